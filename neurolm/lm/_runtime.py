"""Stand-ins for the shared training runtime (``neurolm.training``) until it lands in main."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import torch
import torch.distributed as dist

from neurolm.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def dist_env() -> DistEnv:
    return DistEnv(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested.startswith("cuda"):
        index = local_rank if requested == "cuda" else int(requested[5:])
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {requested} requested but CUDA is not available on this machine")
        return torch.device("cuda", index)
    if requested != "cpu":
        raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:N")
    return torch.device("cpu")


def init_distributed(env: DistEnv, device: torch.device) -> None:
    if env.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def wrap_ddp(model: torch.nn.Module, env: DistEnv, device: torch.device):
    if not env.distributed:
        return None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                     else None)


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    v, inner, gauss = st["python"]
    random.setstate((v, tuple(inner), gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
