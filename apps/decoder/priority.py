"""The dashboard yields the CPU to the decoder.

On a small machine the redraw competes with the decode thread for cores. So the
GUI thread lowers its own scheduling priority (a per-thread nice value on
Linux), and engine processes are started from a launcher thread that keeps the
normal priority, because a new process inherits the niceness of the thread
that starts it.
"""

from __future__ import annotations

import os
import queue
import sys
import threading

from rtbci.engine.process import EngineProcess

__all__ = ["GUI_NICENESS", "EngineLauncher", "lower_this_thread_priority"]

# The GUI thread's nice value; the decoder keeps the normal 0.
GUI_NICENESS = 10


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
    """Launches :class:`EngineProcess` instances from a thread created before the GUI lowered its priority."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="rtbci-engine-launcher", daemon=True)
        self._thread.start()

    def launch(self, engine: EngineProcess) -> None:
        """Start ``engine``'s process (returns once it is spawned; it warms up in the background)."""
        done = threading.Event()
        failures: list[BaseException] = []
        self._requests.put((engine, done, failures))
        done.wait()
        if failures:
            raise failures[0]

    def _serve(self) -> None:
        while True:
            engine, done, failures = self._requests.get()
            try:
                engine.launch()
            except BaseException as error:  # handed to the caller, which reports it
                failures.append(error)
            finally:
                done.set()
