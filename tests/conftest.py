"""Shared fixtures: paths to the real recordings in ../shared/data/real, and a user data directory
of its own for every test (nothing a test calibrates or records lands in the real one)."""

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


@pytest.fixture(autouse=True)
def rtbci_home(tmp_path_factory, monkeypatch) -> Path:
    """A fresh user data directory (``RTBCI_HOME``) for each test."""
    home = tmp_path_factory.mktemp("rtbci-home")
    monkeypatch.setenv("RTBCI_HOME", str(home))
    return home
