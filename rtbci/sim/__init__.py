"""The simulated rig: multi-subject, multi-session spikes, LFP and reaching behaviour.

Use :func:`simulate_session` for a whole recording as a Session, or
:class:`RigSimulator` for the same data block by block (the live LSL source
streams it through :mod:`rtbci.sim.live`).
"""

from rtbci.sim.config import LfpConfig, PopulationConfig, SimConfig, TaskConfig, VariabilityConfig
from rtbci.sim.rig import BEHAVIOR_LABELS, RigSimulator, SimBlock
from rtbci.sim.session import channel_labels, session_id, simulate_session, subject_name
from rtbci.sim.variability import build_session_rig, build_subject, derive_seed

__all__ = [
    "BEHAVIOR_LABELS",
    "LfpConfig",
    "PopulationConfig",
    "RigSimulator",
    "SimBlock",
    "SimConfig",
    "TaskConfig",
    "VariabilityConfig",
    "build_session_rig",
    "build_subject",
    "channel_labels",
    "derive_seed",
    "session_id",
    "simulate_session",
    "subject_name",
]
