"""Real-time scheduling for the threads that carry a bin: the decode thread and liblsl's receivers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["inherited_realtime_priority"]


@contextmanager
def inherited_realtime_priority(priority: int | None) -> Iterator[None]:
    """Run the enclosed code with this thread at SCHED_FIFO ``priority``, then restore its policy.

    Threads started inside inherit the policy. liblsl starts an inlet's
    receiver threads when the inlet opens; made inside this block, they take
    samples off the network at the decode thread's priority, so that a busy
    machine delays neither (measured with `rtbci bench conformance
    --realtime-priority`: with only the decode thread at real-time priority,
    sources chunking 20-100 samples had 1-19 late bins in 500 on a loaded
    2-core machine). Where the priority is refused (no CAP_SYS_NICE) or None,
    nothing changes.

    Parameters
    ----------
    priority
        SCHED_FIFO priority (1-99), or None.
    """
    if priority is None:
        yield
        return
    try:
        policy, parameters = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (OSError, AttributeError):  # not permitted or not Linux: the decode thread reports it
        yield
        return
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, parameters)
