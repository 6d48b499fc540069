"""Checkpoint/resume of a training run: what is saved besides the weights, and the checks before resuming.

The checkpoint files themselves (atomic directories, ``keep_last``, the latest
*good* one) are :mod:`storage.checkpoints`'; this module decides what a
training run puts in them and restores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from neurolm.errors import ConfigError
from neurolm.training.rng import rng_state, set_rng_state
from storage import checkpoints
from storage.checkpoints import Checkpoint


def find_resume(out_dir: str, resume: bool, lineage: dict, *, same_data: Sequence[str] = (),
                check: Callable[[Checkpoint], None] | None = None) -> Checkpoint | None:
    """The latest good checkpoint in ``out_dir`` to resume from, or None for a fresh run.

    ConfigError when ``out_dir`` holds checkpoints and ``resume`` is false; when
    ``check`` (the stage's own test: same model config…) raises; or when a
    ``same_data`` lineage key (e.g. ``store_version``) differs from this run's.
    """
    ckpt = checkpoints.load_latest_good(out_dir)
    if ckpt is None:
        return None
    if not resume:
        raise ConfigError(f"{out_dir} already holds checkpoints (latest step {ckpt.step}); "
                          "resume, or choose a new output directory")
    if check is not None:
        check(ckpt)
    for key in same_data:
        old, new = ckpt.lineage.get(key), lineage.get(key)
        if old and new and old != new:
            raise ConfigError(f"checkpoint {ckpt.path} was trained on {key.replace('_', ' ')} {old}, "
                              f"this run reads {new}; resuming would change the data")
    return ckpt


def training_state(step: int, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                   history: list[dict], **extra) -> dict:
    """Everything besides the weights that continues a run exactly: optimizer, scaler, RNGs, history, extras."""
    return {"step": step, "optimizer": opt.state_dict(), "scaler": scaler.state_dict() if scaler else None,
            "rng": rng_state(), "history": history, **extra}


def restore(ckpt: Checkpoint, model: torch.nn.Module, opt: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler | None, device: torch.device) -> tuple[int, list[dict]]:
    """Load weights, optimizer, scaler and RNG states from ``ckpt``; returns (next step, history so far).

    Stage extras saved with :func:`training_state` are in ``ckpt.state`` for the caller to restore.
    """
    model.load_state_dict({k: v.to(device) for k, v in ckpt.weights.items()}, strict=True)
    opt.load_state_dict(ckpt.state["optimizer"])
    if scaler is not None and ckpt.state.get("scaler"):
        scaler.load_state_dict(ckpt.state["scaler"])
    set_rng_state(ckpt.state["rng"])
    return int(ckpt.state["step"]), list(ckpt.state["history"])
