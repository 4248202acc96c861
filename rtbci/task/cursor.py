"""The cursor: decoded velocity blended with the ideal one by the assist, integrated, kept in bounds."""

from __future__ import annotations

import numpy as np

__all__ = ["Cursor", "blend_velocity", "ideal_velocity"]


def ideal_velocity(cursor: np.ndarray, target: np.ndarray, speed: float, bin_s: float) -> np.ndarray:
    """The velocity of the straight path from the cursor to the target centre.

    It moves at ``speed``, and in the last bin only as far as the centre, so that it lands there
    and stays.

    Parameters
    ----------
    cursor, target
        ``(2,)`` positions.
    speed
        Speed in position units per second.
    bin_s
        Bin width in seconds.

    Returns
    -------
    np.ndarray
        ``(2,)`` velocity; zero at the target centre.
    """
    offset = np.asarray(target, dtype=np.float64) - cursor
    distance = float(np.hypot(offset[0], offset[1]))
    if distance == 0.0:
        return np.zeros(2)
    return offset / distance * min(speed, distance / bin_s)


def blend_velocity(decoded: np.ndarray, ideal: np.ndarray, assist: float) -> np.ndarray:
    """``(1 − assist) · decoded + assist · ideal``: 0 is pure brain control, 1 pure assist.

    Parameters
    ----------
    decoded, ideal
        ``(2,)`` velocities.
    assist
        Blend weight in [0, 1].

    Returns
    -------
    np.ndarray
        ``(2,)`` velocity that moves the cursor.
    """
    return (1.0 - assist) * np.asarray(decoded, dtype=np.float64) + assist * np.asarray(
        ideal, dtype=np.float64
    )


class Cursor:
    """A cursor position integrated from velocity, clamped to a square workspace.

    Parameters
    ----------
    half_width
        The cursor stays in ``[-half_width, half_width]²``.
    bin_s
        Integration step in seconds.

    Attributes
    ----------
    position
        ``(2,)`` float64 current position.
    """

    def __init__(self, half_width: float, bin_s: float) -> None:
        self.half_width = half_width
        self.bin_s = bin_s
        self.position = np.zeros(2)

    def move(self, velocity: np.ndarray) -> float:
        """Advance one bin at ``velocity``; returns the distance actually travelled (after clamping)."""
        before = self.position.copy()
        self.position = np.clip(
            self.position + np.asarray(velocity) * self.bin_s, -self.half_width, self.half_width
        )
        step = self.position - before
        return float(np.hypot(step[0], step[1]))

    def place(self, position: np.ndarray) -> None:
        """Put the cursor at ``position`` (clamped to the workspace)."""
        self.position = np.clip(np.asarray(position, dtype=np.float64), -self.half_width, self.half_width)
