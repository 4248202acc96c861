"""A live score of the decoder: decoded velocities against the true ones, once the truth has caught up.

The truth comes from the rig's behavior stream (:class:`rtbci.engine.behavior.BehaviorFollower`)
at each bin's end plus the training lag; bins wait until the truth reaches that time.
"""

from __future__ import annotations

import numpy as np

from rtbci.engine.behavior import BehaviorFollower, r2_with_truth

__all__ = ["LiveScorer"]


class LiveScorer:
    """Velocity R² of decoded bins against the truth, scored as the truth catches up.

    Parameters
    ----------
    follower
        The behavior stream's follower; None (no behavior stream) scores nothing.
    names
        The velocity channels scored (``vel_x``, ``vel_y``), as the truth names them.
    columns
        Their columns in the decoder's output.
    lag_s
        The training lag: bin ``b`` is scored against the truth at its end plus ``lag_s``.
    """

    def __init__(
        self, follower: BehaviorFollower | None, names: list[str], columns: list[int], lag_s: float
    ) -> None:
        self.follower = follower
        self.names = names
        self.columns = columns
        self.lag_s = lag_s
        self.pending: list[np.ndarray] = []
        self.decoded: list[np.ndarray] = []
        self.truth: list[np.ndarray] = []

    def add(self, records: np.ndarray) -> None:
        """Keep new per-bin records (with ``end_time`` and ``output``) until they can be scored."""
        if self.follower is None or not len(records):
            return
        self.pending.append(records)

    def score_ready(self) -> None:
        """Read the truth that arrived and pair it with every kept bin it now covers."""
        if self.follower is None or not self.pending:
            return
        self.follower.poll()
        newest = self.follower.times[-1] if len(self.follower.times) else -np.inf
        records = np.concatenate(self.pending)
        due = records["end_time"] + self.lag_s <= newest
        ready = records[due]
        self.pending = [records[~due]]
        if len(ready):
            self.decoded.append(ready["output"][:, self.columns].astype(np.float64))
            self.truth.append(self.follower.at(ready["end_time"] + self.lag_s, self.names))

    def r2(self) -> tuple[dict[str, float], int]:
        """R² per velocity name over the scored bins, and how many bins had a known truth.

        Returns
        -------
        dict, int
            Name -> R² (empty when nothing was scored); the bins it covers.
        """
        if not self.decoded:
            return {}, 0
        decoded, truth = np.concatenate(self.decoded), np.concatenate(self.truth)
        values = r2_with_truth(decoded, truth)
        return dict(zip(self.names, values.tolist(), strict=True)), int(np.isfinite(truth).all(axis=1).sum())
