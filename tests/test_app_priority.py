"""The dashboard's engines run before its GUI: a prioritizing launcher starts engine processes that
inherit its raised priority (and its core, where one is to spare), and the cores are split only when
there are enough."""

from __future__ import annotations

import os

import psutil
import pytest
from app_fixtures import random_artifact, write_unique_profile

from apps.decoder.priority import (
    ENGINE_NICENESS,
    ENGINE_REALTIME_PRIORITY,
    GUI_NICENESS,
    MIN_CPUS_FOR_OWN_CORE,
    EngineLauncher,
    split_cpus,
)
from rtbci.engine.engine import EngineOptions
from rtbci.engine.process import EngineProcess

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux scheduling only")


def test_a_core_of_its_own_only_when_cores_are_to_spare():
    assert split_cpus({0, 1}) == (None, None)
    assert MIN_CPUS_FOR_OWN_CORE == 3
    assert split_cpus({0, 1, 2}) == (frozenset({2}), frozenset({0, 1}))
    assert split_cpus({2, 5, 7, 9}) == (frozenset({9}), frozenset({2, 5, 7}))


def test_an_engine_process_inherits_the_launchers_priority_and_core(tmp_path):
    own_niceness = os.getpriority(os.PRIO_PROCESS, 0)
    launcher = EngineLauncher()
    placement = launcher.placement
    permitted = os.geteuid() == 0  # raising priority needs root or CAP_SYS_NICE
    assert placement.engine_niceness == (ENGINE_NICENESS if permitted else 0)
    assert placement.realtime_priority == ENGINE_REALTIME_PRIORITY
    assert placement.engine_cpus == split_cpus(os.sched_getaffinity(0))[0]
    assert f"nice {placement.engine_niceness}" in placement.describe()
    assert f"GUI thread nice {GUI_NICENESS}" in placement.describe()
    # No rig streams: the engine waits for them (seconds), long enough to look at its process.
    engine = EngineProcess(write_unique_profile(tmp_path, random_artifact()), EngineOptions())
    launcher.launch(engine)
    try:
        process = psutil.Process(engine.process.pid)
        assert process.nice() == placement.engine_niceness
        expected_cpus = placement.engine_cpus or os.sched_getaffinity(0)
        assert set(process.cpu_affinity()) == set(expected_cpus)
    finally:
        engine.stop()
    assert os.getpriority(os.PRIO_PROCESS, 0) == own_niceness, "the caller's own priority is unchanged"
