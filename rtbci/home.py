"""Where a lab's data lives: calibrated profiles, decoder artifacts, recordings, rejected calibrations.

All of it goes under one user data directory: ``$RTBCI_HOME`` when set, else
platformdirs' ``user_data_dir("rtbci")`` (``~/.local/share/rtbci`` on Linux).
Nothing a lab makes is written into the package or the repository: the shipped
profiles (``profiles/*.toml`` beside the package) are read-only templates.

Layout::

    <home>/profiles/     calibrated profiles (and their archived versions, <name>.v<N>.toml)
    <home>/models/       calibrated decoder artifacts, one folder each
    <home>/recordings/   calibration recordings (``rtbci calibrate --record``)
    <home>/rejected/     the reports of calibrations the guard refused
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

__all__ = ["HOME_ENV", "SHIPPED_PROFILES", "DataHome", "data_home", "is_shipped", "plain_name"]

HOME_ENV = "RTBCI_HOME"
SHIPPED_PROFILES = Path(__file__).resolve().parents[1] / "profiles"

_NOT_PLAIN = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class DataHome:
    """The user data directory and its folders (none is created until something is written).

    Attributes
    ----------
    root
        The directory itself.
    """

    root: Path

    @property
    def profiles(self) -> Path:
        """Calibrated profiles."""
        return self.root / "profiles"

    @property
    def models(self) -> Path:
        """Calibrated decoder artifacts."""
        return self.root / "models"

    @property
    def recordings(self) -> Path:
        """Recordings: calibrate --record blocks and the dashboard's."""
        return self.root / "recordings"

    @property
    def rejected(self) -> Path:
        """Reports of refused calibrations."""
        return self.root / "rejected"


def data_home() -> DataHome:
    """The user data directory: ``$RTBCI_HOME`` if set, else ``platformdirs.user_data_dir("rtbci")``.

    Returns
    -------
    DataHome
        With an absolute root.
    """
    configured = os.environ.get(HOME_ENV)
    root = Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("rtbci"))
    return DataHome(root.resolve())


def is_shipped(path: str | Path) -> bool:
    """Whether ``path`` is inside the shipped profiles folder (read-only templates and the bundled model)."""
    return Path(path).resolve().is_relative_to(SHIPPED_PROFILES)


def plain_name(text: str) -> str:
    """``text`` as a folder or file name of letters, digits, ``-`` and ``_`` only.

    Every run of other characters becomes one ``-`` (``sim-S0-d15#16`` -> ``sim-S0-d15-16``).

    Raises
    ------
    ValueError
        If nothing plain is left.
    """
    name = _NOT_PLAIN.sub("-", text).strip("-")
    if not name:
        raise ValueError(f"{text!r} has no letters or digits to name a folder with")
    return name
