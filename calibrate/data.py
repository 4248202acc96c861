"""The calibration block: read (or import) a recording, check it can calibrate, featurize it.

Featurizing goes through :func:`rtbci.signal.featurize`, the same streaming
featurizers the engine runs online, so the decoder is fit on exactly what it will see.
"""

from __future__ import annotations

import math
from pathlib import Path

from calibrate.errors import CalibrationDataError
from rtbci.io.importers import SUPPORTED_SUFFIXES, import_session
from rtbci.io.session import Session, StreamKind
from rtbci.io.store import read_session
from rtbci.profile import Profile
from rtbci.signal import BinnedSession, featurize

__all__ = ["check_block", "featurize_block", "load_block", "required_seconds_hint"]

_NEURAL_KIND = {"lfp": StreamKind.LFP, "spikes": StreamKind.SPIKES}


def load_block(path: str | Path) -> Session:
    """Read a Session file (``.h5``), or import an NWB, XDF or Blackrock/neo recording.

    Raises
    ------
    SessionFileError, SessionImportError
        If the file is missing or unreadable (both are user errors).
    """
    path = Path(path)
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return import_session(path)
    return read_session(path)


def required_seconds_hint(min_seconds: float) -> str:
    """How to get enough data, for error messages."""
    return f"record at least {min_seconds:g} s (e.g. --record {math.ceil(min_seconds * 1.1)})"


def check_block(session: Session, profile: Profile, modality: str, min_seconds: float, source: str) -> None:
    """Check that a recording holds what calibration needs, before any work is done.

    Parameters
    ----------
    session
        The recording.
    profile
        Names the kinematics to decode (``output.kinematics``).
    modality
        The decoder's input, ``lfp`` or ``spikes``.
    min_seconds
        Shortest usable block.
    source
        The file or stream the block came from, for messages.

    Raises
    ------
    CalibrationDataError
        No behavior stream, behavior without the profile's kinematics channels, no
        stream of the decoder's input, or a recording shorter than ``min_seconds``.
    """
    names = list(profile.output.kinematics)
    behavior = session.of_kind(StreamKind.KINEMATICS)
    if not behavior or behavior[0].n_samples == 0:
        raise CalibrationDataError(
            f"{source}: no behavior stream. Calibration fits the decoder to behavior: the block needs a "
            f"kinematics stream with channels {names} recorded with the neural data; "
            f"{required_seconds_hint(min_seconds)} with the task software (or simulator) sending behavior"
        )
    missing = [name for name in names if name not in behavior[0].channel_labels]
    if missing:
        raise CalibrationDataError(
            f"{source}: behavior stream {behavior[0].name!r} has no channel(s) {missing} "
            f"(profile output.kinematics); it has {behavior[0].channel_labels}"
        )
    neural = session.of_kind(_NEURAL_KIND[modality])
    if not neural or neural[0].n_samples == 0:
        raise CalibrationDataError(
            f"{source}: no {modality} stream, and the profile's decoder reads {modality}; "
            f"{required_seconds_hint(min_seconds)} of {modality} with behavior"
        )
    seconds = min(neural[0].duration, behavior[0].duration)
    if seconds < min_seconds:
        raise CalibrationDataError(
            f"{source}: only {seconds:.1f} s of {modality} with behavior; calibration needs at least "
            f"{min_seconds:g} s (the last 20% is held out for scoring): {required_seconds_hint(min_seconds)}"
        )


def featurize_block(
    session: Session, profile: Profile, min_seconds: float, source: str, progress: bool = True
) -> BinnedSession:
    """Featurize a checked block and check the aligned bins still cover ``min_seconds``.

    Raises
    ------
    CalibrationDataError
        If fewer aligned bins than ``min_seconds`` remain (e.g. behavior and neural
        data overlap only in part).
    """
    binned = featurize(session, profile, progress=progress)
    seconds = len(binned) * profile.bin_s
    if seconds < min_seconds:
        raise CalibrationDataError(
            f"{source}: neural data and behavior overlap in only {seconds:.1f} s of bins; calibration "
            f"needs at least {min_seconds:g} s: {required_seconds_hint(min_seconds)}"
        )
    return binned
