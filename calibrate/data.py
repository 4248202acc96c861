"""The calibration block: read (or import) a recording, check it can calibrate, featurize it.

Featurizing goes through :func:`rtbci.signal.featurize`, the same streaming
featurizers the engine runs online, so the decoder is fit on exactly what it will see.
"""

from __future__ import annotations

import math
from pathlib import Path

from calibrate.errors import CalibrationDataError
from rtbci.io.importers import SUPPORTED_SUFFIXES, import_session
from rtbci.io.session import Session, Stream, StreamKind
from rtbci.io.store import read_session
from rtbci.profile import Profile
from rtbci.signal import BinnedSession, Labels, featurize

__all__ = [
    "RECORDING_EDGE_S",
    "check_block",
    "featurize_block",
    "load_block",
    "min_record_seconds",
    "required_seconds_hint",
]

_NEURAL_KIND = {"lfp": StreamKind.LFP, "spikes": StreamKind.SPIKES}

# What a live recording may lose at each of its two ends: the first chunk of a stream can
# arrive this late after the block starts, and the last one this early before it ends
# (sources' chunking up to half a second, plus LSL transport).
RECORDING_EDGE_S = 0.5


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


def min_record_seconds(min_seconds: float, profile: Profile) -> float:
    """The shortest recording that still leaves ``min_seconds`` of aligned bins: the one length rule.

    Calibration needs ``min_seconds`` of bins where neural data and behavior overlap
    (:func:`featurize_block`). A recording of ``min_seconds`` falls short of that: each
    stream's first and last chunk may fall outside it (:data:`RECORDING_EDGE_S` at each
    end), a bin is kept only once the behavior ``kinematics_lag_ms`` after its end was
    recorded, and the first and last bins are partial. ``--record``, the app's dialog
    (its minimum) and the error messages all take their length from here.

    Parameters
    ----------
    min_seconds
        Aligned bins calibration needs (``CalibrationConfig.min_seconds``).
    profile
        The bin width (``bin_s``) and the behavior lag (``features.kinematics_lag_ms``).

    Returns
    -------
    float
        Whole seconds.
    """
    losses = 2 * RECORDING_EDGE_S + profile.features.kinematics_lag_ms / 1000.0 + 2 * profile.bin_s
    return float(math.ceil(min_seconds + losses))


def required_seconds_hint(min_seconds: float, profile: Profile) -> str:
    """How to get enough data, for error messages."""
    return f"record at least {min_record_seconds(min_seconds, profile):g} s"


def check_block(
    session: Session,
    profile: Profile,
    modality: str,
    min_seconds: float,
    source: str,
    labels: Labels = "hand",
) -> None:
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
    labels
        Where the labels come from: ``hand`` (a behavior stream), ``cue`` or ``refit`` (a
        recorded cursor task stream).

    Raises
    ------
    CalibrationDataError
        No behavior stream (no task stream, for ``cue`` and ``refit``), behavior without the
        profile's kinematics channels, no stream of the decoder's input, or a recording shorter
        than ``min_seconds``.
    """
    labelled = (
        _behavior(session, profile, min_seconds, source)
        if labels == "hand"
        else _task(session, labels, source)
    )
    neural = session.of_kind(_NEURAL_KIND[modality])
    hint = required_seconds_hint(min_seconds, profile)
    with_what = "behavior" if labels == "hand" else "the task"
    if not neural or neural[0].n_samples == 0:
        raise CalibrationDataError(
            f"{source}: no {modality} stream, and the profile's decoder reads {modality}; "
            f"{hint} of {modality} with {with_what}"
        )
    seconds = min(neural[0].duration, labelled.duration)
    if seconds < min_seconds:
        raise CalibrationDataError(
            f"{source}: only {seconds:.1f} s of {modality} with {with_what}; calibration needs at least "
            f"{min_seconds:g} s (the last 20% is held out for scoring): {hint}"
        )


def _task(session: Session, labels: Labels, source: str) -> Stream:
    task = session.of_kind(StreamKind.TASK)
    if not task or task[0].n_samples == 0:
        raise CalibrationDataError(
            f"{source}: no cursor task stream, and --labels {labels} reads its labels from one. Record the "
            f"block with `rtbci calibrate --record S --labels {labels}` (it runs the task), or with "
            "`rtbci run --record FILE` while `rtbci task` runs; a block with a behavior stream calibrates "
            "with --labels hand"
        )
    return task[0]


def _behavior(session: Session, profile: Profile, min_seconds: float, source: str) -> Stream:
    names = list(profile.output.kinematics)
    hint = required_seconds_hint(min_seconds, profile)
    behavior = session.of_kind(StreamKind.KINEMATICS)
    if not behavior or behavior[0].n_samples == 0:
        raise CalibrationDataError(
            f"{source}: no behavior stream. Calibration fits the decoder to behavior: the block needs a "
            f"kinematics stream with channels {names} recorded with the neural data; "
            f"{hint} with the task software (or simulator) sending behavior"
        )
    missing = [name for name in names if name not in behavior[0].channel_labels]
    if missing:
        raise CalibrationDataError(
            f"{source}: behavior stream {behavior[0].name!r} has no channel(s) {missing} "
            f"(profile output.kinematics); it has {behavior[0].channel_labels}"
        )
    return behavior[0]


def featurize_block(
    session: Session,
    profile: Profile,
    min_seconds: float,
    source: str,
    progress: bool = True,
    labels: Labels = "hand",
) -> BinnedSession:
    """Featurize a checked block and check the aligned bins still cover ``min_seconds``.

    ``labels`` says where the kinematics come from (:func:`rtbci.signal.featurize`).

    Raises
    ------
    CalibrationDataError
        If fewer aligned bins than ``min_seconds`` remain (e.g. behavior and neural
        data overlap only in part).
    """
    binned = featurize(session, profile, labels=labels, progress=progress)
    seconds = len(binned) * profile.bin_s
    if seconds < min_seconds:
        with_what = "behavior" if labels == "hand" else "the task"
        raise CalibrationDataError(
            f"{source}: neural data and {with_what} overlap in only {seconds:.1f} s of bins; calibration "
            f"needs at least {min_seconds:g} s: {required_seconds_hint(min_seconds, profile)}"
        )
    return binned
