"""One optimiser step of an LM stage (pretraining, instruction tuning): accumulation, clipping, precision.

The stage computes the learning rate and says which output is its own loss (``loss_eeg`` in
pretraining, ``loss_instr`` in tuning) and how a batch moves to the device; the rest is the same:
``model(batch, text)`` per micro-batch returns ``loss`` (stage loss + text loss, equal weights),
gradients are accumulated over the micro-batches (DDP syncs only on the last), clipped at
``grad_clip``, and the step goes through a GradScaler when there is one (fp16).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext

import torch

Batch = dict[str, torch.Tensor]


def autocast_for(device: torch.device, amp: str):
    """bf16 (or fp16 when asked / unsupported) autocast on CUDA; nothing on CPU or with ``off``."""
    if device.type != "cuda" or amp == "off":
        return nullcontext()
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast("cuda", dtype=torch.bfloat16)


def grad_scaler(device: torch.device, amp: str) -> torch.amp.GradScaler | None:
    """A GradScaler exactly when :func:`autocast_for` runs fp16, else None."""
    if device.type == "cuda" and (amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported())):
        return torch.amp.GradScaler("cuda")
    return None


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP (or compiled) wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def accumulate_step(model: torch.nn.Module, opt: torch.optim.Optimizer, lr: float, batches: Iterable[Batch],
                    text_batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, amp: str, grad_clip: float,
                    scaler: torch.amp.GradScaler | None, loss_key: str,
                    to_device: Callable[[Batch, torch.device], Batch]) -> dict[str, float]:
    """One optimiser step over the given micro-batches; → ``{loss_key, lr, grad_norm[, loss_text], loss}``.

    ``model(to_device(batch), text)`` must return ``loss`` and ``loss_key`` (and ``loss_text`` when
    given text); ``model`` may be DDP-wrapped: gradient sync is skipped on all but the last micro-batch.
    """
    device = next(model.parameters()).device
    for g in opt.param_groups:
        g["lr"] = lr
    model.train()
    opt.zero_grad(set_to_none=True)
    blist, tlist = list(batches), list(text_batches)
    n = len(blist)
    tot_main = tot_text = 0.0
    for i, b in enumerate(blist):
        text = tuple(t.to(device, non_blocking=True) for t in tlist[i]) if i < len(tlist) else None
        sync = nullcontext() if i == n - 1 or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast_for(device, amp):
                out = model(to_device(b, device), text)
            loss = out["loss"] / n
            (scaler.scale(loss) if scaler is not None else loss).backward()
        tot_main += float(out[loss_key].detach())
        if "loss_text" in out:
            tot_text += float(out["loss_text"].detach())
    if scaler is not None:
        scaler.unscale_(opt)
    params = [p for g in opt.param_groups for p in g["params"]]
    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    m = {loss_key: tot_main / n, "lr": lr, "grad_norm": float(gnorm)}
    if tlist:
        m["loss_text"] = tot_text / min(n, len(tlist))
    m["loss"] = m[loss_key] + m.get("loss_text", 0.0)
    return m
