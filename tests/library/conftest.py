from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def demo_copy(demo_dataset, tmp_path) -> Path:
    """A private copy of the small demo dataset that a test may change."""
    target = tmp_path / "demo"
    shutil.copytree(demo_dataset, target)
    return target
