"""The process's place in a ``torchrun`` job (RANK / WORLD_SIZE / LOCAL_RANK) and DDP set-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """This process's rank, the number of processes and its rank on this machine (1 process: 0, 1, 0)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def dist_env() -> DistEnv:
    """Read the environment ``torchrun`` sets; a plain process is rank 0 of 1."""
    return DistEnv(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(env: DistEnv, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, Gloo on CPU) when there is more than one process."""
    if env.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def wrap_ddp(model: torch.nn.Module, env: DistEnv,
             device: torch.device) -> torch.nn.parallel.DistributedDataParallel | None:
    """``model`` in DistributedDataParallel when distributed, else None (call the model itself)."""
    if not env.distributed:
        return None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                     else None)


def barrier(env: DistEnv) -> None:
    """Wait for every rank (e.g. after rank 0 wrote a checkpoint); nothing for one process."""
    if env.distributed:
        dist.barrier()
