"""Where training data comes from: Session files, featurized like the engine does.

Sessions go through the same streaming featurizers the engine runs
(:func:`rtbci.signal.featurize`), so training sees exactly what serving sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from rtbci.errors import UserError
from rtbci.io.store import SessionFileError, read_session
from rtbci.profile import Profile
from rtbci.signal import BinnedSession, featurize
from rtbci.train.data import DataError

__all__ = ["find_session_files", "load_binned_sessions"]


def find_session_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and directories into a sorted list of Session files.

    Parameters
    ----------
    paths
        ``.h5`` files, or directories whose ``*.h5`` files are all taken.

    Returns
    -------
    list of Path
        Directory contents sorted by name; explicit files in the given order.

    Raises
    ------
    DataError
        If a path does not exist, or nothing is found.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.h5"))
            if not found:
                raise DataError(f"{path}: directory holds no .h5 Session files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or directory")
    if not files:
        raise DataError("no training data given")
    return files


def load_binned_sessions(paths: Sequence[str | Path], profile: Profile) -> list[BinnedSession]:
    """Read Session files and featurize them with the profile's settings.

    Parameters
    ----------
    paths
        Files or directories, as for :func:`find_session_files`.
    profile
        Supplies the channel count, binning and LFP feature settings.

    Returns
    -------
    list of BinnedSession

    Raises
    ------
    DataError
        If a file cannot be read, or its channel count does not match the profile.
    """
    binned = []
    for path in tqdm(find_session_files(paths), desc="featurize", unit="session"):
        try:
            session = read_session(path)
        except (SessionFileError, KeyError) as error:
            raise DataError(f"{path}: {error}") from None
        try:
            binned.append(featurize(session, profile, progress=False))
        except UserError as error:
            raise DataError(f"{path}: {error}") from None
    return binned
