"""Training data in memory: featurized sessions, windows of bins, batches.

A window is ``window_bins`` consecutive bins of one session; batches stack
windows from any sessions and carry each window's row in the session table,
which selects its context embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from rtbci.errors import UserError
from rtbci.train.splits import BinBlock

if TYPE_CHECKING:
    from rtbci.signal import BinnedSession

__all__ = ["Batch", "DataError", "SessionBins", "SessionTable", "WindowSampler", "WindowSet"]


class DataError(UserError):
    """Training data is missing, unreadable or does not fit the profile."""


class SessionTable:
    """Session ids in the order of the encoder's context-embedding rows.

    Parameters
    ----------
    session_ids
        Initial rows.
    """

    def __init__(self, session_ids: Sequence[str] = ()) -> None:
        self._ids: list[str] = []
        self.add(session_ids)

    def add(self, session_ids: Sequence[str]) -> list[int]:
        """Append new ids (existing ones are kept where they are); returns their rows."""
        rows = []
        for session_id in session_ids:
            if session_id not in self._ids:
                self._ids.append(session_id)
            rows.append(self._ids.index(session_id))
        return rows

    def row(self, session_id: str) -> int:
        """The context row of a session id."""
        try:
            return self._ids.index(session_id)
        except ValueError:
            raise DataError(f"session {session_id!r} is not in the model's session table") from None

    @property
    def ids(self) -> list[str]:
        """The ids, in row order."""
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._ids


@dataclass
class SessionBins:
    """One session's bins, ready to be cut into model inputs.

    Attributes
    ----------
    session_id, subject
        From the Session metadata.
    context
        Row of the session in the session table.
    spikes
        ``(T, C, 1)`` float32 spike counts per bin.
    lfp
        ``(T, C, F)`` float32 LFP features per bin, as the model reads them.
    kinematics
        ``(T, K)`` float32 behavior targets per bin (lag applied).
    """

    session_id: str
    subject: str
    context: int
    spikes: np.ndarray
    lfp: np.ndarray
    kinematics: np.ndarray

    @classmethod
    def from_binned(cls, binned: BinnedSession, context: int) -> SessionBins:
        """Wrap a featurized session with its context row."""
        return cls(
            session_id=binned.session_id,
            subject=binned.subject,
            context=context,
            spikes=np.ascontiguousarray(binned.spikes[:, :, None], dtype=np.float32),
            lfp=np.ascontiguousarray(binned.lfp, dtype=np.float32),
            kinematics=np.ascontiguousarray(binned.kinematics, dtype=np.float32),
        )

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.kinematics.shape[0])

    def inputs(self, modality: str) -> np.ndarray:
        """The ``(T, C, F)`` encoder input of one modality: ``spikes`` or ``lfp``."""
        if modality == "spikes":
            return self.spikes
        if modality == "lfp":
            return self.lfp
        raise ValueError(f"unknown modality {modality!r}; expected 'spikes' or 'lfp'")

    def block(self, block: BinBlock) -> SessionBins:
        """The bins of one block (views, no copy)."""
        if block.stop > self.n_bins:
            raise ValueError(f"block [{block.start}, {block.stop}) is past the {self.n_bins} bins")
        part = block.as_slice()
        return SessionBins(
            self.session_id,
            self.subject,
            self.context,
            self.spikes[part],
            self.lfp[part],
            self.kinematics[part],
        )


@dataclass
class Batch:
    """A batch of windows.

    Attributes
    ----------
    spikes
        ``(B, T, C, 1)`` float32.
    lfp
        ``(B, T, C, F)`` float32.
    kinematics
        ``(B, T, K)`` float32.
    session
        ``(B,)`` int64 context rows.
    """

    spikes: torch.Tensor
    lfp: torch.Tensor
    kinematics: torch.Tensor
    session: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        """The batch on another device."""
        return Batch(
            self.spikes.to(device),
            self.lfp.to(device),
            self.kinematics.to(device),
            self.session.to(device),
        )

    def modality(self, name: str) -> torch.Tensor:
        """The input of one modality: ``spikes`` or ``lfp``."""
        if name == "spikes":
            return self.spikes
        if name == "lfp":
            return self.lfp
        raise ValueError(f"unknown modality {name!r}; expected 'spikes' or 'lfp'")


class WindowSet:
    """All windows of ``window_bins`` bins, every ``stride`` bins, over some sessions.

    Parameters
    ----------
    sessions
        The sessions (or blocks of them) to cut.
    window_bins
        Bins per window.
    stride
        Bins between window starts.
    """

    def __init__(self, sessions: Sequence[SessionBins], window_bins: int, stride: int) -> None:
        if window_bins < 1 or stride < 1:
            raise ValueError(f"window_bins ({window_bins}) and stride ({stride}) must be >= 1")
        self.sessions = list(sessions)
        self.window_bins = window_bins
        starts = [
            (position, start)
            for position, session in enumerate(self.sessions)
            for start in range(0, session.n_bins - window_bins + 1, stride)
        ]
        if not starts:
            lengths = [session.n_bins for session in self.sessions]
            raise DataError(f"no window of {window_bins} bins fits in sessions of {lengths} bins")
        self._starts = np.asarray(starts, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._starts.shape[0])

    def batch(self, indices: np.ndarray) -> Batch:
        """Stack the windows with these indices into a batch."""
        spikes, lfp, kinematics, session = [], [], [], []
        for position, start in self._starts[indices]:
            item = self.sessions[position]
            part = slice(start, start + self.window_bins)
            spikes.append(item.spikes[part])
            lfp.append(item.lfp[part])
            kinematics.append(item.kinematics[part])
            session.append(item.context)
        return Batch(
            torch.from_numpy(np.stack(spikes)),
            torch.from_numpy(np.stack(lfp)),
            torch.from_numpy(np.stack(kinematics)),
            torch.tensor(session, dtype=torch.int64),
        )


class WindowSampler:
    """Which windows each process trains on at each step, from the step number alone.

    Each epoch is a permutation of all windows seeded by ``(seed, epoch)``, cut
    into global batches of ``batch_size × world_size``; each process takes its
    own slice. Being a pure function of the step, it resumes exactly from a
    checkpoint and gives every process disjoint windows.

    Parameters
    ----------
    n_windows
        Size of the window set.
    batch_size
        Windows per process per step.
    seed
        Base seed.
    rank, world_size
        This process's place in a data-parallel job.
    """

    def __init__(
        self, n_windows: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.global_batch = batch_size * world_size
        if n_windows < self.global_batch:
            raise DataError(
                f"{n_windows} training windows are fewer than one global batch of {self.global_batch}"
            )
        self.n_windows = n_windows
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.steps_per_epoch = n_windows // self.global_batch

    def indices(self, step: int) -> np.ndarray:
        """Window indices of this process at a step."""
        epoch, position = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n_windows)
        first = position * self.global_batch + self.rank * self.batch_size
        return order[first : first + self.batch_size]
