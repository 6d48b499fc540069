"""Which torch device a training process uses."""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import AfterValidator

from neurolm.errors import ConfigError


def _device_name(v: str) -> str:
    if v != "cpu" and not v.startswith("cuda"):
        raise ValueError(f"device must be cpu or cuda[:N], not {v!r}")
    return v


#: A params field naming a device: ``cpu`` or ``cuda[:N]`` (checked when the params are built).
DeviceName = Annotated[str, AfterValidator(_device_name)]


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """The torch device for ``cpu``, ``cuda`` (this rank's GPU) or ``cuda:N``; ConfigError if absent."""
    if requested.startswith("cuda"):
        if requested == "cuda":
            index = local_rank
        elif requested.startswith("cuda:") and requested[5:].isdigit():
            index = int(requested[5:])
        else:
            raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {requested} requested but CUDA is not available on this machine")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {requested}: CUDA device {index} does not exist "
                              f"(this machine has {torch.cuda.device_count()})")
        return torch.device("cuda", index)
    if requested != "cpu":
        raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:N")
    return torch.device("cpu")
