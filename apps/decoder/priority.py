"""The dashboard yields the CPU to the decoder.

On a small machine the redraw competes with the decode thread for cores. Three things keep the
decoder first:

1. Engine processes are started from a launcher thread that raised its own priority (nice
   :data:`ENGINE_NICENESS`, where the system permits it), because a new process inherits the nice
   value, and the CPU affinity, of the thread that starts it. Their decode thread asks for the
   kernel's real-time FIFO policy (:data:`ENGINE_REALTIME_PRIORITY`), so that no ordinary thread,
   the GUI's included, delays a bin; where that is refused, the engine's status says so under
   ``scheduling`` and it decodes at its nice value.
2. The GUI thread lowers its own priority (nice :data:`GUI_NICENESS`; on Linux threads have their own).
3. Where there are cores to spare (:data:`MIN_CPUS_FOR_OWN_CORE` or more usable), the engine gets a
   core of its own: the launcher thread, and so every engine it starts, runs on the last usable core,
   and the GUI thread on the others. On fewer cores both may use every core, and only priority applies:
   a pinned engine could not move away from another program's work on its core.

:class:`EnginePlacement` says what was applied, and why not where something was refused.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from dataclasses import dataclass

from rtbci.engine.process import EngineProcess

__all__ = [
    "ENGINE_NICENESS",
    "ENGINE_REALTIME_PRIORITY",
    "GUI_NICENESS",
    "MIN_CPUS_FOR_OWN_CORE",
    "EngineLauncher",
    "EnginePlacement",
    "lower_this_thread_priority",
    "split_cpus",
]

# The GUI thread's nice value; the decoder's is lower (a higher priority).
GUI_NICENESS = 10
# Engine processes' nice value where the system permits raising priority (root or CAP_SYS_NICE).
ENGINE_NICENESS = -10
# The decode thread's SCHED_FIFO priority (1-99), asked for where priority is raised.
ENGINE_REALTIME_PRIORITY = 50
# With this many usable cores or more, the engine gets one to itself.
MIN_CPUS_FOR_OWN_CORE = 3


@dataclass(frozen=True)
class EnginePlacement:
    """How engine processes and the GUI thread are scheduled.

    Attributes
    ----------
    engine_niceness
        Nice value of the engine processes the launcher starts.
    engine_cpus, gui_cpus
        The cores each may use; ``None``: every usable core (no core of its own).
    realtime_priority
        The SCHED_FIFO priority the engine's decode thread asks for (``EngineOptions``), ``None``: none.
    refused
        Why a raise of priority or a pinning was not applied (empty when all was).
    """

    engine_niceness: int
    engine_cpus: frozenset[int] | None
    gui_cpus: frozenset[int] | None
    realtime_priority: int | None = None
    refused: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line: niceness, real-time priority asked for, cores, and anything refused."""
        if self.engine_cpus is None:
            usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
            cores = f"shares all {usable} cores (fewer than {MIN_CPUS_FOR_OWN_CORE}: priority only)"
        else:
            cores = f"core {sorted(self.engine_cpus)} of its own, GUI on {sorted(self.gui_cpus)}"
        fifo = ""
        if self.realtime_priority is not None:
            fifo = f", decode thread SCHED_FIFO {self.realtime_priority}"
        text = f"engine nice {self.engine_niceness}{fifo}, {cores}; GUI thread nice {GUI_NICENESS}"
        return text + "".join(f"; {reason}" for reason in self.refused)


def split_cpus(cpus: set[int]) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """The engine's core and the GUI's cores out of ``cpus``; ``(None, None)`` when too few to spare one.

    Parameters
    ----------
    cpus
        The usable cores (``os.sched_getaffinity(0)``).
    """
    if len(cpus) < MIN_CPUS_FOR_OWN_CORE:
        return None, None
    engine = max(cpus)
    return frozenset({engine}), frozenset(cpus - {engine})


def lower_this_thread_priority(niceness: int = GUI_NICENESS) -> bool:
    """Set the calling thread's nice value to at least ``niceness`` (on Linux threads have their own).

    Returns
    -------
    bool
        Whether this system allows it per thread (not elsewhere, where it would change the whole process).
    """
    if not sys.platform.startswith("linux"):
        return False
    thread = threading.get_native_id()
    os.setpriority(os.PRIO_PROCESS, thread, max(niceness, os.getpriority(os.PRIO_PROCESS, thread)))
    return True


class EngineLauncher:
    """Launches :class:`EngineProcess` instances from a thread of their own, with the decoder's priority.

    Parameters
    ----------
    prioritize
        Raise the launcher thread's priority and, where cores are to spare, pin it to a core of its own
        (see the module's description); every engine it starts inherits both. ``False`` starts engines
        as the caller's thread would (tests on a shared machine).

    Attributes
    ----------
    placement
        What was applied (:class:`EnginePlacement`).
    """

    def __init__(self, prioritize: bool = True) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._placed = threading.Event()
        self.placement = EnginePlacement(0, None, None, None, ("not prioritized",))
        self._thread = threading.Thread(
            target=self._serve, args=(prioritize,), name="rtbci-engine-launcher", daemon=True
        )
        self._thread.start()
        self._placed.wait()

    def place_gui_thread(self) -> None:
        """Lower the calling (GUI) thread's priority and keep it off the engine's core, if it has one."""
        lower_this_thread_priority()
        if self.placement.gui_cpus is not None:
            os.sched_setaffinity(0, self.placement.gui_cpus)

    def launch(self, engine: EngineProcess) -> None:
        """Start ``engine``'s process (returns once it is spawned; it warms up in the background)."""
        done = threading.Event()
        failures: list[BaseException] = []
        self._requests.put((engine, done, failures))
        done.wait()
        if failures:
            raise failures[0]

    def _place(self) -> EnginePlacement:
        """Raise this thread's priority and pin it where possible; what was applied."""
        if not sys.platform.startswith("linux"):
            return EnginePlacement(0, None, None, None, ("priority and cores are set on Linux only",))
        refused = []
        thread = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, thread, ENGINE_NICENESS)
        except PermissionError:
            refused.append(f"nice {ENGINE_NICENESS} refused (needs root or CAP_SYS_NICE)")
        engine_cpus, gui_cpus = split_cpus(os.sched_getaffinity(0))
        if engine_cpus is not None:
            os.sched_setaffinity(0, engine_cpus)
        niceness = os.getpriority(os.PRIO_PROCESS, thread)
        return EnginePlacement(niceness, engine_cpus, gui_cpus, ENGINE_REALTIME_PRIORITY, tuple(refused))

    def _serve(self, prioritize: bool) -> None:
        try:
            if prioritize:
                self.placement = self._place()
        finally:
            self._placed.set()
        while True:
            engine, done, failures = self._requests.get()
            try:
                engine.launch()
            except BaseException as error:  # handed to the caller, which reports it
                failures.append(error)
            finally:
                done.set()
