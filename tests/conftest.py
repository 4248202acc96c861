"""Shared fixtures: paths to the real recordings in ../shared/data/real."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "real"


@pytest.fixture
def real_data() -> Path:
    """The folder of real recordings; skips the test where it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real recordings not found at {REAL_DATA} (they live in ../shared/data/real)")
    return REAL_DATA
