"""Data-parallel training that runs unchanged with or without ``torchrun``.

``torchrun --nproc_per_node N -m rtbci.cli train ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`init_distributed` reads them and joins the
process group (NCCL when CUDA is there, gloo on CPU). A plain ``python`` run has
no ``WORLD_SIZE`` and trains in one process with the same code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistributedContext", "all_reduce_mean", "init_distributed", "shutdown_distributed", "wrap_model"]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly one-process) training job.

    Attributes
    ----------
    rank, world_size, local_rank
        As set by ``torchrun``; 0, 1, 0 for a plain run.
    device
        The device this process trains on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @classmethod
    def single(cls, device: torch.device | None = None) -> DistributedContext:
        """One plain process on ``device`` (the CPU by default)."""
        return cls(rank=0, world_size=1, local_rank=0, device=device or torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every process (no-op in a plain run)."""
        if self.distributed:
            dist.barrier()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the ``torchrun`` process group if there is one.

    Parameters
    ----------
    device
        ``auto`` (CUDA if available, else CPU), ``cpu`` or ``cuda``.

    Returns
    -------
    DistributedContext
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    torch_device = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistributedContext(rank, world_size, local_rank, torch_device)


def shutdown_distributed() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(module: nn.Module, context: DistributedContext) -> nn.Module:
    """Wrap a module in DDP when there are several processes; otherwise return it.

    ``find_unused_parameters`` is on because the objectives leave some
    parameters out of some steps (e.g. the context embeddings of sessions that
    are not in a batch).
    """
    module.to(context.device)
    if not context.distributed:
        return module
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)


def all_reduce_mean(value: float, context: DistributedContext) -> float:
    """Average a scalar over all processes (for logged losses)."""
    if not context.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=context.device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / context.world_size
