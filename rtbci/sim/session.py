"""Assemble simulated blocks into a :class:`~rtbci.io.session.Session`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from importlib.metadata import version

import numpy as np

from rtbci.io.session import Session, SessionMeta, Stream, StreamKind
from rtbci.sim.config import SimConfig
from rtbci.sim.rig import BEHAVIOR_LABELS, RigSimulator

__all__ = ["channel_labels", "session_id", "simulate_session", "subject_name"]

# Simulated day 0; session d is recorded d days later.
_FIRST_DAY = date(2026, 1, 5)


def subject_name(subject: int) -> str:
    """``sim-S<k>``."""
    return f"sim-S{subject}"


def session_id(subject: int, session: int) -> str:
    """``sim-S<k>-d<NN>``."""
    return f"{subject_name(subject)}-d{session:02d}"


def channel_labels(n_channels: int) -> list[str]:
    """``elec000``, ``elec001``, ..."""
    return [f"elec{i:03d}" for i in range(n_channels)]


def _chunk_sizes(n: int, chunk: int) -> np.ndarray:
    sizes = np.full(n // chunk, chunk, dtype=np.int64)
    return np.append(sizes, n % chunk) if n % chunk else sizes


def simulate_session(
    config: SimConfig,
    subject: int,
    session: int,
    minutes: float,
    seed: int,
    on_progress: Callable[[int], None] | None = None,
) -> Session:
    """Simulate one recording session of one subject.

    Parameters
    ----------
    config
        Rig settings.
    subject
        Subject number; subjects share nothing.
    session
        Session (day) index of that subject; nearby days are similar.
    minutes
        Length of the recording.
    seed
        Top seed: the same arguments give the same session, bit for bit.
    on_progress
        Called with the number of samples generated after every block.

    Returns
    -------
    Session
        Streams ``spikes``, ``lfp``, ``behavior`` and ``markers`` on one clock
        starting at ``config.start_time_s``.
    """
    if minutes <= 0:
        raise ValueError(f"minutes must be > 0, got {minutes}")
    simulator = RigSimulator(config, subject, session, seed)
    fs, n_channels = config.rate_hz, config.n_channels
    n = round(minutes * 60.0 * fs)
    spikes = np.empty((n, n_channels), dtype=np.uint8)
    lfp = np.empty((n, n_channels), dtype=np.float32)
    behavior = np.empty((n, len(BEHAVIOR_LABELS)), dtype=np.float32)
    markers: list[tuple[int, str]] = []
    done = 0
    while done < n:
        block = simulator.next_block()
        take = min(len(block), n - done)
        spikes[done : done + take] = block.spikes[:take]
        lfp[done : done + take] = block.lfp[:take]
        behavior[done : done + take] = block.behavior[:take]
        markers.extend(m for m in block.markers if m[0] < n)
        done += take
        if on_progress is not None:
            on_progress(take)

    timestamps = config.start_time_s + np.arange(n) / fs
    chunks = _chunk_sizes(n, config.chunk_samples)
    labels = channel_labels(n_channels)
    meta = SessionMeta(
        subject=subject_name(subject),
        session_id=session_id(subject, session),
        task=f"reaching ({config.task.task})",
        date=(_FIRST_DAY + timedelta(days=session)).isoformat(),
        channel_regions=config.channel_regions(),
        provenance={
            "generator": f"rtbci.sim {version('rtbci')}",
            "seed": str(seed),
            "subject_seed": str(simulator.subject_seed),
            "session_seed": str(simulator.session_seed),
            "subject": str(subject),
            "session": str(session),
            "units": str(simulator.rig.units.n_units),
            "dead_channels": ",".join(map(str, np.flatnonzero(simulator.rig.dead))),
            "noisy_channels": ",".join(map(str, np.flatnonzero(simulator.rig.noisy_lfp_uv))),
        },
    )
    result = Session(meta)
    result.add(Stream("spikes", StreamKind.SPIKES, spikes, timestamps, fs, labels, "count", chunks))
    result.add(Stream("lfp", StreamKind.LFP, lfp, timestamps, fs, list(labels), "uV", chunks.copy()))
    result.add(
        Stream(
            "behavior",
            StreamKind.KINEMATICS,
            behavior,
            timestamps,
            fs,
            list(BEHAVIOR_LABELS),
            "m, m/s",
            chunks.copy(),
        )
    )
    marker_samples = np.array([m[0] for m in markers], dtype=np.int64)
    result.add(
        Stream(
            "markers",
            StreamKind.MARKERS,
            np.array([[m[1]] for m in markers], dtype=str).reshape(-1, 1),
            config.start_time_s + marker_samples / fs,
            0.0,
            ["event"],
            "",
            np.ones(len(markers), dtype=np.int64),
        )
    )
    return result
