from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory) -> Path:
    """A small demo dataset (8 cases) generated once per test session."""
    from explain.demo.synthetic import generate_demo_dataset

    out = tmp_path_factory.mktemp("demo-data")
    generate_demo_dataset(out, cases=8, seed=11, overwrite=True)
    return out


@pytest.fixture
def demo_copy(demo_dataset, tmp_path) -> Path:
    """A private copy of the small demo dataset that a test may change."""
    target = tmp_path / "demo"
    shutil.copytree(demo_dataset, target)
    return target
