"""``--record``: record spikes, LFP and behavior from the profile's LSL streams into a Session file.

For calibration without a hand (``--labels cue|refit``) the block holds the cursor task's stream
and markers instead of behavior, with the task running in-process meanwhile
(:class:`calibrate.task_run.TaskThread`); it starts once the task has stepped its first bin.

The file is written while recording (SWMR, flushed every second, so even a killed
process keeps what came) and closed before any fitting starts: nothing recorded
is lost if calibration fails later. The inputs are the engine's own LSL inlets
(:class:`rtbci.lsl.inlet.LslInput`), with clock sync onto this machine's clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from calibrate.errors import CalibrationDataError
from calibrate.task_run import TaskThread
from rtbci.io.session import SessionMeta, StreamKind
from rtbci.io.store import SessionWriter, StreamLayout
from rtbci.lsl import require_pylsl
from rtbci.lsl.follow import FollowedStream
from rtbci.lsl.info import described_channel_labels
from rtbci.lsl.inlet import LslInput
from rtbci.lsl.resolve import describe, resolve_stream
from rtbci.profile import Profile
from rtbci.signal import Labels
from rtbci.task.publisher import task_markers_spec, task_stream_spec

__all__ = ["RecordedBlock", "StreamHealth", "record_block"]

# Inlet buffer while recording: generous, since the loop also writes to disk between pulls.
RECORD_BUFFER_S = 10
_POLL_S = 0.02
_KINDS = {
    "spikes": StreamKind.SPIKES,
    "lfp": StreamKind.LFP,
    "behavior": StreamKind.KINEMATICS,
    "task": StreamKind.TASK,
}
# The recorded name of the task's marker stream.
TASK_MARKERS = "task_markers"
# Beyond the task's wait for the decoder's output: how long its first bin may take to arrive.
_TASK_START_S = 5.0
# A step between consecutive timestamps longer than this many sample periods counts as a gap.
_GAP_PERIODS = 5.0


@dataclass
class StreamHealth:
    """What one stream delivered while recording.

    Attributes
    ----------
    samples
        Samples recorded.
    expected
        Samples the nominal rate promises over the recording.
    gaps
        Jumps in the timestamps longer than five sample periods.
    reconnects
        Times the inlet found the stream again after losing it.
    state
        ``connected`` or ``lost`` at the end.
    """

    samples: int = 0
    expected: int = 0
    gaps: int = 0
    reconnects: int = 0
    state: str = "connected"

    def summary(self) -> str:
        """E.g. ``'59998/60000 samples, 0 gaps, connected'``."""
        return f"{self.samples}/{self.expected} samples, {self.gaps} gaps, {self.state}"


@dataclass
class RecordedBlock:
    """A finished recording.

    Attributes
    ----------
    path
        The Session file.
    session_id
        Its session id (``<subject>-cal-<UTC time>``).
    seconds
        Wall-clock recording time.
    health
        Per stream role (``spikes``, ``lfp``, and ``behavior`` or ``task``).
    """

    path: Path
    session_id: str
    seconds: float
    health: dict[str, StreamHealth] = field(default_factory=dict)


def _stream_units(info) -> str:
    channel = info.desc().child("channels").child("channel")
    return "" if channel.empty() else channel.child_value("unit")


def _open_inputs(profile: Profile, labels: Labels) -> dict[str, LslInput]:
    specs = {"spikes": profile.streams.spikes, "lfp": profile.streams.lfp}
    if labels == "hand":
        behavior = profile.streams.behavior
        if behavior is None:
            raise CalibrationDataError(
                f"{profile.path}: no [streams.behavior]. Calibration fits the decoder to behavior: add "
                "the task software's (or simulator's) behavior stream to the profile, recorded with the "
                "neural data; or calibrate without a hand (--labels cue or refit)"
            )
        specs["behavior"] = behavior
    else:
        specs["task"] = task_stream_spec(profile)
    timeout = profile.engine.resolve_timeout_s
    return {
        role: LslInput(spec, role, resolve_stream(spec, role, timeout), RECORD_BUFFER_S, timeout)
        for role, spec in specs.items()
    }


def record_block(
    profile: Profile,
    seconds: float,
    path: str | Path,
    *,
    labels: Labels = "hand",
    stop: threading.Event | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    show_bar: bool = True,
) -> RecordedBlock:
    """Record the profile's spikes, LFP and behavior streams for ``seconds`` into a new Session file.

    Parameters
    ----------
    profile
        Names the streams (``[streams]``) and the subject.
    seconds
        How long to record.
    path
        The Session file to create (its folder is created).
    labels
        ``hand`` records the behavior stream. ``cue`` and ``refit`` run the cursor task in-process
        (:class:`~calibrate.task_run.TaskThread`: assist 1 for ``cue``) on the decoder's output, and
        record its task stream and markers instead; the block starts once the task has stepped.
    stop
        Set it to end the recording early (what came so far is kept).
    on_progress
        Called about four times a second with the fraction done and a stream-health line.
    show_bar
        Show a tqdm bar with the stream health.

    Returns
    -------
    RecordedBlock

    Raises
    ------
    CalibrationDataError
        If the profile has no behavior stream (``hand``), another task runs for this rig or the task
        found no decoder output (``cue``, ``refit``), or a stream sent nothing (the file is kept).
    StreamMissingError, StreamMismatchError
        If a stream is not found or does not match the profile.
    """
    path = Path(path)
    if path.exists():
        raise CalibrationDataError(f"{path}: already exists; a recording never overwrites a file")
    with ExitStack() as running:
        if labels != "hand":
            task = running.enter_context(TaskThread(profile, labels))
            markers = FollowedStream(task_markers_spec(profile), "task markers", text=True)
            running.callback(markers.close)
        else:
            task = markers = None
        inputs = _open_inputs(profile, labels)
        return _record(profile, seconds, path, labels, inputs, task, markers, stop, on_progress, show_bar)


def _start_the_task(task_input: LslInput, task: TaskThread, markers: FollowedStream) -> int:
    """Start the task once its markers are followed, and wait for its first step, so that the block
    holds every trial from the first. Returns the task samples pulled (in ``task_input.data``)."""
    clock = require_pylsl().local_clock
    deadline = clock() + _TASK_START_S
    while not markers.look():
        if clock() > deadline:
            raise CalibrationDataError(f"the task's marker stream was not found in {_TASK_START_S:g} s")
        task.stop.wait(_POLL_S)
    task.start()
    limit_s = task.wait_s + _TASK_START_S
    deadline = clock() + limit_s
    while (n := task_input.pull(timeout=_POLL_S)) == 0:
        task.check()
        if clock() > deadline:
            raise CalibrationDataError(
                f"the cursor task of --labels {task.labels} published nothing in {limit_s:g} s: is the "
                "decoder running and streaming?"
            )
    return n


def _record(
    profile: Profile,
    seconds: float,
    path: Path,
    labels: Labels,
    inputs: dict[str, LslInput],
    task: TaskThread | None,
    markers: FollowedStream | None,
    stop: threading.Event | None,
    on_progress: Callable[[float, str], None] | None,
    show_bar: bool,
) -> RecordedBlock:
    pylsl = require_pylsl()
    infos = {role: source.inlet.info(profile.engine.resolve_timeout_s) for role, source in inputs.items()}
    now = datetime.now(UTC)
    session_id = f"{profile.rig.subject}-cal-{now:%Y%m%dT%H%M%SZ}"
    meta = SessionMeta(
        subject=profile.rig.subject,
        session_id=session_id,
        task="calibration" if labels == "hand" else f"calibration ({labels} labels)",
        date=now.isoformat(timespec="seconds"),
        channel_regions=profile.channel_regions(),
        provenance={
            "tool": "rtbci calibrate --record",
            "profile": str(profile.path),
            "labels": labels,
            **{f"stream_{role}": describe(info) for role, info in infos.items()},
        },
    )
    layouts = [
        StreamLayout(
            role,
            _KINDS[role],
            source.n_channels,
            source.rate,
            described_channel_labels(
                infos[role], source.n_channels, [f"{role}{index:03d}" for index in range(source.n_channels)]
            ),
            _stream_units(infos[role]),
            source.dtype,
        )
        for role, source in inputs.items()
    ]
    if markers is not None:
        layouts.append(StreamLayout(TASK_MARKERS, StreamKind.MARKERS, 1, 0.0, ["marker"], "", str))
    health = {role: StreamHealth() for role in inputs}
    last_time = dict.fromkeys(inputs, np.nan)
    stop = stop or threading.Event()
    elapsed = 0.0
    try:
        # The block starts now (with a task: at its first step, which it keeps): what queued while
        # the inlets were opened and clock-synced (about 0.6 s each) came before it.
        first_task_samples = 0 if task is None else _start_the_task(inputs["task"], task, markers)
        for role, source in inputs.items():
            if role != "task":
                source.drop_queued()
        with (
            SessionWriter(path, meta, layouts, flush_interval_s=1.0) as writer,
            tqdm(total=seconds, desc="record", unit="s", bar_format=_BAR, disable=not show_bar) as bar,
        ):

            def take(role: str, n: int) -> None:
                source = inputs[role]
                times = source.timestamps[:n]
                writer.append(role, source.data[:n], times)
                steps = np.diff(np.concatenate([[last_time[role]], times]))
                health[role].gaps += int(np.sum(steps > _GAP_PERIODS / source.rate))
                health[role].samples += n
                last_time[role] = times[-1]

            if first_task_samples:
                take("task", first_task_samples)
            started = pylsl.local_clock()
            next_report = 0.0
            while True:
                for role, source in inputs.items():
                    n = source.pull()
                    if n:
                        take(role, n)
                if task is not None:
                    task.check()
                    pulled = markers.poll()
                    if pulled is not None:
                        writer.append(TASK_MARKERS, *pulled)
                elapsed = pylsl.local_clock() - started
                if elapsed >= seconds or stop.is_set():
                    break
                if elapsed >= next_report:
                    next_report = elapsed + 0.25
                    line = _health_line(inputs, health, elapsed)
                    bar.update(min(elapsed, seconds) - bar.n)
                    bar.set_postfix_str(line)
                    if on_progress is not None:
                        on_progress(min(1.0, elapsed / seconds), line)
                stop.wait(_POLL_S)
            bar.update(min(elapsed, seconds) - bar.n)
    finally:
        for role, source in inputs.items():
            health[role].expected = round(elapsed * source.rate)
            health[role].reconnects = source.reconnects
            health[role].state = str(source.state)
            source.close()
    silent = [role for role, item in health.items() if item.samples == 0]
    if silent:
        raise CalibrationDataError(
            f"{path}: the {', '.join(silent)} stream(s) sent no samples in {elapsed:.1f} s of recording "
            "(the file is kept with what came); check that the source is streaming"
        )
    return RecordedBlock(path, session_id, elapsed, health)


_BAR = "{desc}: {n:.0f}/{total:.0f} s |{bar}| {postfix}"


def _health_line(inputs: dict[str, LslInput], health: dict[str, StreamHealth], elapsed: float) -> str:
    parts = []
    for role, source in inputs.items():
        rate = health[role].samples / elapsed if elapsed > 0 else 0.0
        state = "" if source.state == "connected" else f" {source.state}"
        parts.append(f"{role} {rate:.0f}/{source.rate:g} Hz {health[role].gaps} gaps{state}")
    return ", ".join(parts)
