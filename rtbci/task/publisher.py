"""``rtbci task`` over LSL: the cursor task driven by the decoder's output stream.

It reads the profile's ``[streams.output]`` (the engine's decoded kinematics), runs one
:class:`~rtbci.task.trials.CursorTask` bin per decoded sample on its ``vel_x``/``vel_y`` channels,
and publishes:

- a task stream (:func:`task_stream_spec`): float32, one sample per decoded bin, stamped with the
  decoded sample's own timestamp, channels :data:`TASK_CHANNELS`;
- a marker stream (:func:`task_markers_name`): one string per trial event,
  ``"<event> trial=<id>"`` with ``<event>`` one of ``target_on``, ``enter``, ``exit``, ``success``,
  ``timeout``, stamped like the task sample of the same bin.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from rtbci.errors import UserError
from rtbci.lsl import require_pylsl
from rtbci.lsl.info import described_channel_labels, make_marker_info, make_stream_info
from rtbci.lsl.inlet import LslInput
from rtbci.lsl.resolve import resolve_stream
from rtbci.profile import Profile, StreamSpec
from rtbci.task.stream import TASK_CHANNELS, task_channel_units, write_sample
from rtbci.task.trials import CursorTask, TrialResult

__all__ = [
    "TASK_CHANNELS",
    "TaskPublisher",
    "TaskRun",
    "task_markers_name",
    "task_markers_spec",
    "task_stream_spec",
]


def task_stream_spec(profile: Profile) -> StreamSpec:
    """The task stream of a profile: ``rtbci-task-<rig>``, type ``CursorTask``, at the bin rate.

    Its source id follows the output stream's, so two rigs on one network do not mix.
    """
    output = profile.streams.output
    return StreamSpec(
        channels=len(TASK_CHANNELS),
        rate=1.0 / profile.bin_s,
        name=f"rtbci-task-{profile.rig.name}",
        type="CursorTask",
        source_id=f"rtbci-task-{output.source_id or output.name or profile.rig.name}",
    )


def task_markers_name(profile: Profile) -> str:
    """Name of the task's marker stream: the task stream's name with ``-markers``."""
    return f"{task_stream_spec(profile).name}-markers"


def task_markers_spec(profile: Profile) -> StreamSpec:
    """The task's marker stream: one string channel, irregular, type ``Markers``, ids after the task's."""
    return StreamSpec(
        channels=1,
        rate=0.0,
        name=task_markers_name(profile),
        type="Markers",
        source_id=f"{task_stream_spec(profile).source_id}-markers",
    )


def _velocity_columns(labels: list[str]) -> np.ndarray:
    try:
        return np.array([labels.index("vel_x"), labels.index("vel_y")])
    except ValueError:
        raise UserError(
            f"the decoder's output stream has channels {', '.join(labels)}; the task needs vel_x and vel_y"
        ) from None


@dataclass
class TaskRun:
    """What a run of the task did.

    Attributes
    ----------
    bins
        Decoded samples the task stepped on.
    results
        Finished trials, oldest first.
    seconds
        Wall-clock time of the run.
    """

    bins: int = 0
    results: list[TrialResult] = field(default_factory=list)
    seconds: float = 0.0


class TaskPublisher:
    """Runs the cursor task on the decoder's LSL output and publishes the task and its events.

    The task and marker streams appear when it is made and stay until :meth:`close` (or the end
    of a ``with`` block), so that a recorder can find them before the first trial.

    Parameters
    ----------
    profile
        The rig profile: ``[streams.output]`` to read, ``[task]`` to run, the bin width as the
        task's clock, and ``[engine]`` resolve timeout and inlet buffer.
    """

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.spec = task_stream_spec(profile)
        self.markers_name = task_markers_name(profile)
        self.task = CursorTask(profile.task, profile.bin_s)
        self._outlet, self._marker_outlet = self._outlets(require_pylsl())

    def __enter__(self) -> TaskPublisher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Withdraw the task and marker streams (a consumer still reads what it has received)."""
        self._outlet = self._marker_outlet = None

    def describe(self) -> list[str]:
        """One line per stream read or written."""
        output, task = self.profile.streams.output, self.profile.task
        return [
            f"cursor task: {task.targets}, target radius {task.target_radius:g}, hold {task.hold_ms:g} ms, "
            f"timeout {task.timeout_s:g} s, assist {task.assist:g}, gain {task.gain:g}",
            f"  reads    name={output.name!r} type={output.type!r} source_id={output.source_id!r}",
            f"  task     name={self.spec.name!r} type={self.spec.type!r} source_id={self.spec.source_id!r} "
            f"channels={', '.join(TASK_CHANNELS)} rate={self.spec.rate:g} Hz",
            f"  markers  name={self.markers_name!r} type='Markers' irregular, string",
        ]

    def _outlets(self, pylsl):
        info = make_stream_info(
            self.spec.name,
            self.spec.type,
            self.spec.source_id,
            TASK_CHANNELS,
            task_channel_units(self.profile.output.units),
            self.spec.rate,
            "float32",
            description={
                "manufacturer": "rtbci task",
                "states": "0 inter_trial, 1 reach, 2 hold, 3 success, 4 timeout",
                "target_radius": f"{self.profile.task.target_radius:g}",
            },
        )
        marker_spec = task_markers_spec(self.profile)
        markers = make_marker_info(marker_spec.name, marker_spec.source_id, {"manufacturer": "rtbci task"})
        return pylsl.StreamOutlet(info), pylsl.StreamOutlet(markers)

    def run(
        self,
        stop: threading.Event,
        seconds: float | None = None,
        trials: int | None = None,
        wait_s: float | None = None,
    ) -> TaskRun:
        """Run until ``stop`` is set, ``seconds`` have passed, or ``trials`` trials have finished.

        Parameters
        ----------
        stop
            Set it (from a signal handler or another thread) to end cleanly.
        seconds
            Wall-clock limit; ``None`` for none.
        trials
            Finished trials to stop after; ``None`` for no limit.
        wait_s
            How long to look for the decoder's output stream; ``None`` for the profile's
            ``[engine] resolve_timeout_s``. The time limit ``seconds`` starts once it is found.

        Returns
        -------
        TaskRun

        Raises
        ------
        rtbci.lsl.resolve.StreamMissingError
            If the decoder's output stream is not found within ``wait_s``.
        """
        if self._outlet is None:
            raise RuntimeError("this TaskPublisher is closed")
        outlet, marker_outlet = self._outlet, self._marker_outlet
        profile = self.profile
        spec = profile.streams.output
        engine = profile.engine
        info = resolve_stream(spec, "output", engine.resolve_timeout_s if wait_s is None else wait_s)
        inlet = LslInput(spec, "output", info, engine.max_buflen_s, engine.resolve_timeout_s)
        n_decoded = len(profile.output.kinematics)
        fallback = [*profile.output.kinematics, *(f"channel{i}" for i in range(n_decoded, spec.channels))]
        columns = _velocity_columns(described_channel_labels(inlet.inlet.info(), spec.channels, fallback))
        sample = np.zeros(len(TASK_CHANNELS), dtype=np.float32)
        run = TaskRun(results=self.task.results)
        start = time.monotonic()
        try:
            while not stop.is_set():
                if seconds is not None and time.monotonic() - start >= seconds:
                    break
                if trials is not None and len(self.task.results) >= trials:
                    break
                n = inlet.pull(timeout=0.1)
                for row in range(n):
                    if trials is not None and len(self.task.results) >= trials:
                        break
                    decoded = inlet.data[row, columns].astype(np.float64)
                    frame = self.task.step(decoded)
                    stamp = float(inlet.timestamps[row])
                    write_sample(sample, frame, decoded)
                    outlet.push_sample(sample, stamp)
                    for event in frame.events:
                        marker_outlet.push_sample([f"{event} trial={frame.trial_id}"], stamp)
                    run.bins += 1
        finally:
            inlet.close()
            run.seconds = time.monotonic() - start
        return run
