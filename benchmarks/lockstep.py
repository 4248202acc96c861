"""One block of closed-loop trials in lockstep, through the real engine and LSL, in one process.

The loop is the one ``rtbci simulate --lsl --closed-loop --lockstep``, ``rtbci run`` and
``rtbci task`` make from three processes::

    ClosedLoopSource --spikes, LFP--> Engine --decoded velocity--> TaskPublisher --task stream--+
          ^                                                                                      |
          +--------------------------------------------------------------------------------------+

Here they are three threads of one process (plus the engine's decode thread), which starts in a
second instead of three interpreters, and the loop still crosses LSL on loopback at every hop.
Every block gets its own stream names and source ids (:func:`block_profile`), so blocks run one
after another, or beside another benchmark, never read each other's streams.

The block keeps what calibration needs: every decoded bin's engine record (the very features the
decoder read; :mod:`rtbci.signal` computes the same ones offline, ARCHITECTURE.md rule 1) and the
task stream row that answered it, matched by timestamp (the task stamps its row with the decoded
sample's stamp, which is the bin's end, the record's ``end_time``).
"""

from __future__ import annotations

import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtbci.engine import Engine
from rtbci.lsl.inlet import LslInput
from rtbci.lsl.resolve import resolve_stream
from rtbci.profile import Profile, load_profile, write_profile
from rtbci.sim.closed_loop import ClosedLoopSource, ClosedLoopStats
from rtbci.task.publisher import TaskPublisher, TaskRun, task_stream_spec
from rtbci.task.trials import TrialResult

__all__ = ["LockstepBlock", "LockstepConfig", "block_profile", "nearest", "run_block"]


@dataclass(frozen=True)
class LockstepConfig:
    """How a lockstep block runs.

    Attributes
    ----------
    late_deadline_ms
        The engine's ``[engine] late_deadline_ms``: the engine decodes a bin with stand-ins once its
        inputs' clock passes the bin's deadline, and in lockstep that clock runs on while the
        source waits for the round trip; 5 s outlasts any round trip on a busy machine.
    buffer_s
        ``[engine] max_buflen_s``: how much the inlets hold, so that a reader busy for a moment
        loses nothing of a loop that runs several times faster than real time.
    answer_timeout_s
        How long the source waits for a bin's answer before it pushes the next one (a stall).
    start_timeout_s
        How long the task waits for the decoder's output stream to appear.
    wall_factor
        The block is stopped after ``wall_factor`` times its stream time limit of wall-clock time
        (a loop that stalls must not hang the benchmark).
    """

    late_deadline_ms: float = 5000.0
    buffer_s: int = 30
    answer_timeout_s: float = 3.0
    start_timeout_s: float = 60.0
    wall_factor: float = 3.0


def block_profile(
    base: Path,
    folder: Path,
    assist: float,
    model: dict | None = None,
    config: LockstepConfig | None = None,
    gain: float = 1.0,
) -> Profile:
    """A copy of ``base`` for one block: unique stream names, lockstep engine settings, the assist and gain.

    Parameters
    ----------
    base
        A simulated-rig profile (``rig.subject`` ``sim-S<k>``).
    folder
        Where the copy is written.
    assist
        ``[task] assist``: 1 for a cue block (the cursor goes to the target by itself), 0 for brain
        control.
    model
        The ``[model]`` table to serve (``artifact`` an absolute path); ``None`` keeps the base's
        (made absolute).
    config
        The lockstep settings written into ``[engine]``.
    gain
        ``[task] gain``: the cursor moves at the decoded velocity times this.

    Returns
    -------
    Profile
    """
    data = tomllib.loads(base.read_text(encoding="utf-8"))
    tag = uuid.uuid4().hex[:8]
    for spec in data["streams"].values():
        for key in ("name", "source_id"):
            if spec.get(key):
                spec[key] = f"{spec[key]}-{tag}"
    if model is None:
        model = dict(data["model"], artifact=str((base.parent / data["model"]["artifact"]).resolve()))
    data["model"] = model
    config = config or LockstepConfig()
    data["engine"] = dict(
        data["engine"], late_deadline_ms=config.late_deadline_ms, max_buflen_s=config.buffer_s
    )
    data["task"] = dict(data["task"], assist=float(assist), gain=float(gain))
    return load_profile(write_profile(data, Path(folder) / f"{base.stem}-{tag}.toml"))


@dataclass
class LockstepBlock:
    """What one block did.

    Attributes
    ----------
    trials
        Finished trials, oldest first.
    records
        Engine records (:func:`rtbci.engine.records.record_dtype`) of the bins that a task row
        answered, in decode order.
    task_rows
        ``(len(records), len(TASK_CHANNELS))`` the task stream row of each record's bin
        (:mod:`rtbci.task.stream` names the columns).
    source
        The source's counters (bins, answers, stalls).
    decoded_bins
        Bins the engine decoded (answered or not).
    late_bins
        Decoded bins with an input stood in for (none in a healthy lockstep).
    wall_seconds
        Wall-clock time of the block, engine start-up included.
    """

    trials: list[TrialResult]
    records: np.ndarray
    task_rows: np.ndarray
    source: ClosedLoopStats
    decoded_bins: int
    late_bins: int
    wall_seconds: float
    stream_seconds: float = field(init=False)

    def __post_init__(self) -> None:
        self.stream_seconds = self.source.stream_seconds


def nearest(stamps: np.ndarray, times: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``times``, the index of the nearest of the sorted ``stamps``, and whether it is that close.

    Returns
    -------
    index, found
        ``(len(times),)`` indices into ``stamps`` and a mask of those within ``tolerance``.
    """
    if not len(stamps):
        return np.zeros(len(times), int), np.zeros(len(times), bool)
    right = np.clip(np.searchsorted(stamps, times), 0, len(stamps) - 1)
    left = np.maximum(right - 1, 0)
    index = np.where(np.abs(stamps[left] - times) < np.abs(stamps[right] - times), left, right)
    return index, np.abs(stamps[index] - times) < tolerance


def _matched(records: np.ndarray, stamps: np.ndarray, rows: np.ndarray, bin_s: float):
    """The records answered by a task row, and those rows, matched on the bin's end time."""
    order = np.argsort(stamps)
    index, found = nearest(stamps[order], records["end_time"], bin_s / 4.0)
    return records[found], rows[order][index[found]]


def run_block(
    profile: Profile,
    make_engine: Callable[[Profile], Engine],
    session: int,
    trials: int,
    max_stream_s: float,
    seed: int = 0,
    config: LockstepConfig | None = None,
) -> LockstepBlock:
    """Run ``trials`` trials of the cursor task in closed loop with a simulated participant.

    Parameters
    ----------
    profile
        The block's profile (:func:`block_profile`): streams, task and assist.
    make_engine
        Builds the (not yet started) engine that serves the decoder on ``profile``.
    session
        The simulated participant's session (day).
    trials
        Trials to finish.
    max_stream_s
        Stream time after which the block ends even with fewer trials.
    seed
        The simulator's seed (the subject's units and tuning).
    config
        Lockstep settings.

    Returns
    -------
    LockstepBlock

    Raises
    ------
    RuntimeError
        If a thread of the loop failed.
    """
    config = config or LockstepConfig()
    started = time.monotonic()
    stop = threading.Event()
    done: dict[str, ClosedLoopStats | TaskRun] = {}
    errors: list[BaseException] = []

    def guarded(name: str, work: Callable[[], ClosedLoopStats | TaskRun]) -> Callable[[], None]:
        def target() -> None:
            try:
                done[name] = work()
            except BaseException as error:  # reported by the caller's thread
                errors.append(error)
                stop.set()

        return target

    source = ClosedLoopSource(
        profile, seed=seed, session=session, lockstep=True, answer_timeout_s=config.answer_timeout_s
    )
    bin_s = profile.bin_s
    max_bins = round(max_stream_s / bin_s)
    with TaskPublisher(profile) as publisher:
        loop = threading.Thread(target=guarded("source", lambda: source.run(stop)), name="lockstep-source")
        loop.start()
        engine = make_engine(profile)
        task = None
        reader = None
        records, stamps, rows = [], [], []
        cursor = 0
        try:
            engine.start()
            task = threading.Thread(
                target=guarded(
                    "task", lambda: publisher.run(stop, trials=trials, wait_s=config.start_timeout_s)
                ),
                name="lockstep-task",
            )
            task.start()
            spec = task_stream_spec(profile)
            reader = LslInput(
                spec,
                "task",
                resolve_stream(spec, "task", config.start_timeout_s),
                config.buffer_s,
                profile.engine.resolve_timeout_s,
            )
            deadline = started + config.wall_factor * max_stream_s + config.start_timeout_s
            while task.is_alive() and not stop.is_set() and cursor < max_bins and time.monotonic() < deadline:
                got = reader.pull(timeout=0.05)
                stamps.append(reader.timestamps[:got].copy())
                rows.append(reader.data[:got].copy())
                new, cursor, _ = engine.records.read_since(cursor)
                records.append(new)
        finally:
            stop.set()
            if task is not None:
                task.join(timeout=10.0)
            loop.join(timeout=10.0)
            engine.stop()
            new, cursor, _ = engine.records.read_since(cursor)
            records.append(new)
            if reader is not None:
                got = reader.pull(timeout=0.2)
                stamps.append(reader.timestamps[:got].copy())
                rows.append(reader.data[:got].copy())
                reader.close()
    if errors:
        raise RuntimeError(f"the lockstep loop failed: {errors[0]!r}") from errors[0]
    decoded = np.concatenate(records)
    matched, task_rows = _matched(decoded, np.concatenate(stamps), np.concatenate(rows), bin_s)
    return LockstepBlock(
        trials=list(publisher.task.results),
        records=matched,
        task_rows=task_rows.astype(np.float64),
        source=done["source"],
        decoded_bins=len(decoded),
        late_bins=int(np.count_nonzero(decoded["late_mask"])),
        wall_seconds=time.monotonic() - started,
    )
