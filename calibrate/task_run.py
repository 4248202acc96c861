"""The cursor task, run in-process while a ``cue`` or ``refit`` calibration block is recorded.

Calibration without a hand reads its labels from the task stream (:mod:`rtbci.task.labels`), so
the block is recorded with the task running: ``cue`` runs the profile's ``[task]`` with assist 1
(the cursor moves to each target on its own and the participant follows it), ``refit`` runs it as
the profile sets it (closed loop on the decoder). The task steps on the decoder's output stream,
so the decoder must be running (``rtbci run`` or the app), and no other ``rtbci task`` may publish
this rig's task stream meanwhile: the recording could not tell the two apart.
"""

from __future__ import annotations

import dataclasses
import threading

from calibrate.errors import CalibrationDataError
from rtbci.lsl import require_pylsl
from rtbci.profile import Profile
from rtbci.signal import Labels
from rtbci.task.publisher import TaskPublisher, task_stream_spec

__all__ = ["TaskThread", "task_profile"]

# How long to look for another task already publishing this rig's task stream.
_OTHER_TASK_LOOK_S = 0.5


def task_profile(profile: Profile, labels: Labels) -> Profile:
    """The profile the block's task runs: assist 1 for ``cue``, the profile's own for ``refit``.

    Raises
    ------
    ValueError
        If ``labels`` is ``hand`` (no task runs for it).
    """
    if labels == "cue":
        return dataclasses.replace(profile, task=dataclasses.replace(profile.task, assist=1.0))
    if labels == "refit":
        return profile
    raise ValueError(f"no task runs for labels {labels!r}")


class TaskThread:
    """:class:`~rtbci.task.publisher.TaskPublisher` on a thread, for as long as a recording lasts.

    Its task and marker streams exist from construction, so that the recording opens them before
    the task takes its first step (:meth:`start`; it steps once the decoder's output stream is
    found). Use as a context manager: the end of the ``with`` block stops it.

    Parameters
    ----------
    profile
        The rig profile.
    labels
        ``cue`` or ``refit`` (:func:`task_profile`).

    Raises
    ------
    CalibrationDataError
        If another task already publishes this rig's task stream.
    """

    def __init__(self, profile: Profile, labels: Labels) -> None:
        spec = task_stream_spec(profile)
        others = require_pylsl().resolve_byprop("source_id", spec.source_id, timeout=_OTHER_TASK_LOOK_S)
        if others:
            raise CalibrationDataError(
                f"another `rtbci task` already publishes {spec.name!r} (source_id {spec.source_id!r}) for "
                f"this rig: stop it first. --labels {labels} runs the task itself while it records"
            )
        self.labels = labels
        self.profile = task_profile(profile, labels)
        self.wait_s = profile.engine.resolve_timeout_s
        self.publisher = TaskPublisher(self.profile)
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="rtbci-calibration-task", daemon=True)

    def __enter__(self) -> TaskThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the task: it steps from the decoder's next output on."""
        self.thread.start()

    def _run(self) -> None:
        try:
            self.publisher.run(self.stop, wait_s=self.wait_s)
        except Exception as error:  # the recording's thread reports it (check)
            self.error = error

    def check(self) -> None:
        """Raise if the task stopped on an error (typically: no decoder output to step on).

        Raises
        ------
        CalibrationDataError
        """
        if self.error is not None:
            raise CalibrationDataError(
                f"the cursor task of --labels {self.labels} stopped: {self.error}. It steps on the "
                "decoder's output: start the decoder (`rtbci run --profile P`, or the app) before recording"
            ) from self.error

    def close(self) -> None:
        """Stop the task and withdraw its streams."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(5.0)
        self.publisher.close()
