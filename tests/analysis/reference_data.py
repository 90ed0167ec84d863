"""Locate the read-only reference data at ../shared (next to the repository root)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def shared_path(relative: str) -> Path:
    """Path of a reference file; skip (with the reason) only when ../shared is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(
            f"this known-answer test needs ../shared (reference data): {path} is missing; "
            "the reference data at ../shared is required"
        )
    return path
