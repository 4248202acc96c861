"""The closed-loop cursor task: trials on the decoded velocity, and how well they went.

Pure logic (no LSL, no Qt): :class:`CursorTask` runs trials bin by bin, :func:`summarize` scores
them. ``rtbci task`` (:mod:`rtbci.task.publisher`) runs it on the decoder's LSL output.
"""

from rtbci.task.cursor import Cursor, blend_velocity, ideal_velocity
from rtbci.task.metrics import TaskMetrics, index_of_difficulty, path_efficiency, summarize
from rtbci.task.trials import CursorTask, TaskFrame, TrialResult, TrialState

__all__ = [
    "Cursor",
    "CursorTask",
    "TaskFrame",
    "TaskMetrics",
    "TrialResult",
    "TrialState",
    "blend_velocity",
    "ideal_velocity",
    "index_of_difficulty",
    "path_efficiency",
    "summarize",
]
