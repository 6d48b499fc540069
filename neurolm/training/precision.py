"""Mixed precision: the autocast context and, for fp16 only, a GradScaler."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch


def autocast_and_scaler(device: torch.device, mode: str = "auto"
                        ) -> tuple[Callable[[], AbstractContextManager], torch.amp.GradScaler | None]:
    """(autocast context factory, GradScaler or None).

    CUDA with ``mode != "off"``: bf16 autocast where supported (no scaler needed),
    else fp16 autocast with a GradScaler. CPU, or ``mode == "off"``: fp32.
    """
    if device.type != "cuda" or mode == "off":
        return nullcontext, None
    if torch.cuda.is_bf16_supported():
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def backward(loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    """``loss.backward()``, scaled when a GradScaler is in use."""
    (scaler.scale(loss) if scaler is not None else loss).backward()


def optimizer_step(opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """One optimizer step (through the scaler when there is one), then clear the gradients."""
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    opt.zero_grad(set_to_none=True)
