"""Independent training stages run side by side, one worker process per core.

The stages of the accuracy benchmark (spike teacher, LFP MAE, single-session
baselines, ...) do not depend on each other until distillation, and each trains
fastest on one torch thread (two spinning threads per process on a 2-core
machine were measured 7x slower per step). Running them in parallel workers is
what brings ``--quick`` within minutes.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

__all__ = ["StagePool"]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _timed(train: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, float]:
    started = time.perf_counter()
    result = train(*args, **kwargs)
    return result, time.perf_counter() - started


class StagePool:
    """A pool of worker processes that trains stages and adds up the time they took.

    Parameters
    ----------
    workers
        Worker processes (one per core).
    """

    def __init__(self, workers: int) -> None:
        self.executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_one_thread
        )
        self.futures: dict[str, Future] = {}
        self.stage_seconds: dict[str, float] = {}

    def submit(self, name: str, train: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Start ``train(*args, **kwargs)`` in a worker; :meth:`result` with ``name`` waits for it."""
        self.futures[name] = self.executor.submit(_timed, train, args, kwargs)

    def result(self, name: str) -> Any:
        """Wait for a stage, record its training time under ``name``, and return what it returned."""
        value, seconds = self.futures[name].result()
        self.stage_seconds[name] = seconds
        return value

    def close(self) -> None:
        """Stop the workers."""
        self.executor.shutdown(wait=True, cancel_futures=True)
