"""``featurize``: the offline path, running the streaming featurizers over a whole Session.

Training, calibration and replay checks all call this; it pushes the recorded
samples through the very same :class:`SpikeBinner` and :class:`LfpFeaturizer`
the engine uses online (ARCHITECTURE.md rule 1), then aligns the bins of both
modalities and samples the labels at each bin's end plus a lag: the hand's kinematics, or for
calibration without a hand the velocity labels of the recorded cursor task (:mod:`rtbci.task.labels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from tqdm import tqdm

from rtbci.errors import UserError
from rtbci.io.session import Session, Stream, StreamKind
from rtbci.profile import Profile
from rtbci.signal.bins import BinnedStream, Bins
from rtbci.signal.grid import first_complete_index, grid_epoch, make_featurizer
from rtbci.signal.lfp import LfpFeaturizer
from rtbci.task.labels import LABEL_LAG_MS, TASK_LABELS, task_labels

__all__ = ["LABELS", "BinnedSession", "FeaturizeError", "Labels", "featurize", "run_stream"]

Labels = Literal["hand", "cue", "refit"]
# Where a block's labels come from: the hand (a kinematics stream), or the recorded cursor task.
LABELS: tuple[Labels, ...] = ("hand", *TASK_LABELS)
# The task labels' velocity columns, by the kinematics name a profile decodes.
_TASK_VELOCITY_COLUMNS = {"vel_x": 0, "vel_y": 1}

# Samples are pushed in blocks of this many seconds: bounded memory and a
# progress bar that moves; the result does not depend on it (chunk invariance).
BLOCK_SECONDS = 30.0


class FeaturizeError(UserError):
    """A session cannot be featurized with a profile (missing stream or channel)."""


@dataclass
class BinnedSession:
    """A session as aligned bins, ready for training or calibration.

    Attributes
    ----------
    spikes
        ``(T, C)`` float32 raw spike counts per bin (``(T, 0)`` if the session has none).
    lfp
        ``(T, C, F)`` float32 raw LFP features (``(T, 0, 0)`` if the session has no LFP).
    kinematics
        ``(T, K)`` float32 labels, sampled at ``bin_ends + lag``: the hand's kinematics, or the
        task's velocity labels (``featurize(labels=...)``).
    bin_ends
        ``(T,)`` float64 LSL time of each bin's end.
    kinematics_names
        The K names, from ``profile.output.kinematics``.
    feature_names
        The F LFP feature names.
    session_id, subject
        From the session metadata.
    bin_index
        ``(T,)`` int64 bin number since the epoch (consecutive unless the recording had gaps at its ends).
    health
        The featurizers' health counters, by stream name.
    """

    spikes: np.ndarray
    lfp: np.ndarray
    kinematics: np.ndarray
    bin_ends: np.ndarray
    kinematics_names: list[str]
    feature_names: list[str]
    session_id: str
    subject: str
    bin_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    health: dict[str, dict] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.bin_ends.shape[0])


def run_stream(featurizer: BinnedStream, stream: Stream, progress: tqdm | None = None) -> Bins:
    """Push a whole recorded stream through a featurizer and close its last complete bin.

    Parameters
    ----------
    featurizer
        A fresh (or reset) :class:`SpikeBinner` or :class:`LfpFeaturizer`.
    stream
        The recorded stream.
    progress
        A tqdm bar counting samples, updated per block.

    Returns
    -------
    Bins
        Every complete bin; a trailing bin that the recording stops inside is left out.
    """
    block = max(1, int(BLOCK_SECONDS * featurizer.rate))
    parts = []
    for start in range(0, stream.n_samples, block):
        stop = min(start + block, stream.n_samples)
        parts.append(featurizer.push(stream.data[start:stop], stream.timestamps[start:stop]))
        if progress is not None:
            progress.update(stop - start)
    if stream.n_samples:
        parts.append(featurizer.flush_until(stream.timestamps[-1] + 1.0 / featurizer.rate))
    return Bins.concatenate(parts, featurizer.value_shape)


def _neural_stream(session: Session, kind: StreamKind) -> Stream | None:
    found = session.of_kind(kind)
    if not found:
        return None
    stream = found[0]
    if not stream.rate > 0:
        raise FeaturizeError(
            f"session {session.meta.session_id!r}: stream {stream.name!r} has no nominal rate; "
            "binning needs a regular stream"
        )
    return stream


def _behavior(session: Session) -> Stream:
    try:
        behavior = session.first(StreamKind.KINEMATICS)
    except KeyError as error:
        raise FeaturizeError(str(error.args[0])) from None
    if not behavior.n_samples:
        raise FeaturizeError(f"session {session.meta.session_id!r}: stream {behavior.name!r} has no samples")
    return behavior


def _kinematics_at(
    session: Session, behavior: Stream, names: tuple[str, ...], times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The hand's kinematics at ``times`` (linear interpolation), and which times the stream covers."""
    columns = []
    for name in names:
        if name not in behavior.channel_labels:
            raise FeaturizeError(
                f"session {session.meta.session_id!r}: stream {behavior.name!r} has no channel {name!r} "
                f"(profile output.kinematics); it has {behavior.channel_labels}"
            )
        column = behavior.data[:, behavior.channel_labels.index(name)].astype(np.float64)
        columns.append(np.interp(times, behavior.timestamps, column))
    values = (
        np.stack(columns, axis=1).astype(np.float32) if columns else np.zeros((len(times), 0), np.float32)
    )
    return values, (times >= behavior.timestamps[0]) & (times <= behavior.timestamps[-1])


def _task_stream(session: Session, labels: Labels) -> Stream:
    found = session.of_kind(StreamKind.TASK)
    if not found or not found[0].n_samples:
        have = ", ".join(f"{s.name} ({s.kind})" for s in session.streams.values()) or "none"
        raise FeaturizeError(
            f"session {session.meta.session_id!r}: labels {labels!r} come from a recorded cursor task "
            f"stream (kind 'task'): {'its task stream is empty' if found else 'it has none'}; "
            f"its streams: {have}"
        )
    return found[0]


def _task_labels_at(
    session: Session, task: Stream, labels: Labels, profile: Profile, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The task's velocity labels at ``times`` (zero-order hold), and which times a task row covers.

    Labels are made row by row (ReFIT reads the row before), then each time takes the row of its
    bin, held as it is. Rows are stamped with their decoded bin's end, which may sit up to half a
    bin off this grid (the engine's own epoch, clock sync), so a row stands for the task period
    around its stamp: a time takes the last row stamped at or before half a period after it. A
    time with no row within half a period (the task stream dropped rows, had not started or had
    ended) is not covered. Rows are taken in time order: when the stamps go back (a recording made
    before 2026-12-06, when an engine could take a stalled source's backlog for a clock reset and
    decode those bin times twice), the row recorded later stands for a bin that has two.
    """
    columns = []
    for name in profile.output.kinematics:
        if name not in _TASK_VELOCITY_COLUMNS:
            raise FeaturizeError(
                f"session {session.meta.session_id!r}: labels {labels!r} give the task's velocity "
                f"({', '.join(_TASK_VELOCITY_COLUMNS)}), but the profile decodes {name!r} "
                f"(output.kinematics {list(profile.output.kinematics)})"
            )
        columns.append(_TASK_VELOCITY_COLUMNS[name])
    try:
        per_row = task_labels(task.data, labels, profile.task.target_radius)
    except ValueError as error:
        raise FeaturizeError(f"session {session.meta.session_id!r}: stream {task.name!r}: {error}") from None
    order = np.argsort(task.timestamps, kind="stable")
    stamps, per_row = task.timestamps[order], per_row[order]
    period = 1.0 / task.rate if task.rate > 0 else profile.bin_s
    row = np.searchsorted(stamps, times + period / 2, side="right") - 1
    held = np.clip(row, 0, None)
    covered = (row >= 0) & (times - stamps[held] <= period / 2)
    return per_row[held][:, columns].astype(np.float32), covered


def featurize(
    session: Session,
    profile: Profile,
    lag_ms: float | None = None,
    *,
    labels: Labels = "hand",
    epoch: float | None = None,
    progress: bool = True,
) -> BinnedSession:
    """Bin a recorded session into aligned spike counts, LFP features and kinematics.

    Parameters
    ----------
    session
        A Session with a spikes and/or an LFP stream, and a kinematics stream (``labels="hand"``)
        or a cursor task stream (``cue``, ``refit``).
    profile
        Channel counts (``streams``), bin width and LFP features (``features``)
        and the kinematics to take (``output.kinematics``; ``vel_x``/``vel_y`` for task labels,
        and ``[task] target_radius`` for ``refit``).
    lag_ms
        Labels are sampled at ``bin_end + lag``. None takes, for ``hand``,
        ``profile.features.kinematics_lag_ms`` (motor cortex leads the hand), and for task labels
        :data:`rtbci.task.labels.LABEL_LAG_MS` (each task row is stamped with its decoded bin's
        end): ``refit`` 0, as ReFIT's speed is the decoded speed of that very bin; ``cue`` -120 ms,
        as a participant follows the cue with a visuomotor delay (100-150 ms), so a bin's neural
        data answer the cue shown before it.
    labels
        ``hand``: the kinematics stream, sampled by linear interpolation. ``cue`` or ``refit``: the
        velocity labels of the session's task stream (:mod:`rtbci.task.labels`), by zero-order
        hold (the task's state is categorical: never interpolated).
    epoch
        LSL time of bin 0's start; None takes the epoch the engine recorded
        (``session.meta.bin_epoch``), or else places the grid on the later of
        the neural streams' first samples (:func:`rtbci.signal.grid.grid_epoch`).
        Bins that start before either stream's first sample are left out.
    progress
        Show a tqdm progress bar over the samples.

    Returns
    -------
    BinnedSession
        Only bins that both neural streams complete and whose ``end + lag``
        lies inside the kinematics recording (for task labels: has a task row).

    Raises
    ------
    FeaturizeError
        If the session has neither spikes nor LFP, no kinematics stream (no task stream, for
        ``cue`` and ``refit``), lacks a kinematics channel the profile names, or ``labels`` is
        none of :data:`LABELS`.
    ChannelCountError
        If a neural stream's channel count differs from the profile's.
    """
    if labels not in LABELS:
        raise FeaturizeError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    if lag_ms is None:
        lag_ms = profile.features.kinematics_lag_ms if labels == "hand" else LABEL_LAG_MS[labels]
    lag_s = lag_ms / 1000.0
    sources = {
        key: stream
        for key, stream in (
            ("spikes", _neural_stream(session, StreamKind.SPIKES)),
            ("lfp", _neural_stream(session, StreamKind.LFP)),
        )
        if stream is not None and stream.n_samples
    }
    if not sources:
        raise FeaturizeError(f"session {session.meta.session_id!r} has no spikes or LFP samples to featurize")
    label_stream = _behavior(session) if labels == "hand" else _task_stream(session, labels)
    bin_s = profile.bin_s
    if epoch is None:
        epoch = session.meta.bin_epoch
    if epoch is None:
        later_first = max(float(stream.timestamps[0]) for stream in sources.values())
        epoch = grid_epoch(later_first, max(stream.rate for stream in sources.values()))
    specs = {"spikes": profile.streams.spikes, "lfp": profile.streams.lfp}
    featurizers = {
        role: make_featurizer(
            role, specs[role].channels, stream.rate, bin_s, profile.features, epoch, stream.name
        )
        for role, stream in sources.items()
    }
    # Bins before a stream's first sample would be partial: each stream's first complete bin on.
    first_index = max(
        first_complete_index(epoch, bin_s, float(stream.timestamps[0]), stream.rate)
        for stream in sources.values()
    )
    binned: dict[str, Bins] = {}
    health: dict[str, dict] = {}
    total = sum(stream.n_samples for stream in sources.values())
    with tqdm(total=total, unit="sample", unit_scale=True, desc="featurize", disable=not progress) as bar:
        for key, featurizer in featurizers.items():
            binned[key] = run_stream(featurizer, sources[key], bar)
            health[featurizer.stream] = featurizer.health

    index = None
    for bins in binned.values():
        index = bins.index if index is None else np.intersect1d(index, bins.index, assume_unique=True)
    index = index[index >= first_index]
    bin_ends = epoch + (index + 1) * bin_s

    if labels == "hand":
        kinematics, covered = _kinematics_at(
            session, label_stream, profile.output.kinematics, bin_ends + lag_s
        )
    else:
        kinematics, covered = _task_labels_at(session, label_stream, labels, profile, bin_ends + lag_s)
    index, bin_ends, kinematics = index[covered], bin_ends[covered], kinematics[covered]

    def rows(key: str, empty_shape: tuple[int, ...]) -> np.ndarray:
        if key not in binned:
            return np.zeros((len(index), *empty_shape), np.float32)
        bins = binned[key]
        return bins.values[np.searchsorted(bins.index, index)]

    lfp_featurizer = featurizers.get("lfp")
    return BinnedSession(
        spikes=rows("spikes", (0,)),
        lfp=rows("lfp", (0, 0)),
        kinematics=kinematics,
        bin_ends=bin_ends,
        kinematics_names=list(profile.output.kinematics),
        feature_names=lfp_featurizer.feature_names if isinstance(lfp_featurizer, LfpFeaturizer) else [],
        session_id=session.meta.session_id,
        subject=session.meta.subject,
        bin_index=index,
        health=health,
    )
