"""One optimisation step of stage 2, its optimiser and schedule, and validation (reference §3.5).

Configuration: :class:`neurolm.lm.config.LMTrainConfig` (re-exported here).

- AdamW(β = 0.9, 0.95), weight decay 0.1 on trainable tensors with ≥ 2 dims, none on the rest
  (biases, LayerNorms); frozen parts (the features-mode encoder, the codebook) are not in it.
- Learning rate: linear warm-up from 0, cosine from ``lr`` to ``min_lr`` (6e-4 → 6e-5).
- Each step: an EEG batch and a text batch, ``loss = loss_eeg + loss_text`` (equal weights),
  gradient accumulation over micro-batches, clipping at 1.0, bf16 autocast on CUDA.

The loop around it (epochs, checkpoints, resume, progress) belongs to the training flow.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch

from neurolm.lm.baselines import bigram_baseline, unigram_baseline  # noqa: F401  (re-exported)
from neurolm.lm.config import LMTrainConfig
from neurolm.lm.model import NeuroLM
from neurolm.training import make_adamw
from neurolm.training.lm_step import accumulate_step, autocast_for, unwrap  # noqa: F401  (re-exported)


def lr_at(step: int, cfg: LMTrainConfig) -> float:
    """Linear warm-up from 0 over ``warmup_steps``, then cosine to ``min_lr`` at ``steps``."""
    if cfg.steps is None:
        raise ValueError("steps unresolved: call cfg.resolved(steps_per_epoch) first")
    if step < cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    if step >= cfg.steps:
        return cfg.min_lr
    ratio = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def param_groups(model: NeuroLM, weight_decay: float) -> list[dict]:
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def make_optimizer(model: NeuroLM, cfg: LMTrainConfig) -> torch.optim.AdamW:
    """The shared runtime's AdamW (:func:`neurolm.training.make_adamw`: the groups of :func:`param_groups`)."""

    return make_adamw(model, cfg.lr, cfg.weight_decay, cfg.betas, next(model.parameters()).device)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, cfg: LMTrainConfig,
               eeg_batches: Iterable[dict[str, torch.Tensor]],
               text_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = (),
               scaler: torch.amp.GradScaler | None = None) -> dict[str, float]:
    """One optimiser step over the given micro-batches (``grad_accum`` of them); → losses, lr, grad norm.

    ``model`` may be DDP-wrapped: each micro-batch is one ``model(eeg, text)`` call, and gradient
    sync is skipped on all but the last micro-batch (:func:`neurolm.training.lm_step.accumulate_step`).
    """
    return accumulate_step(model, opt, lr_at(step, cfg), eeg_batches, text_batches, amp=cfg.amp,
                           grad_clip=cfg.grad_clip, scaler=scaler, loss_key="loss_eeg", to_device=_to)


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]], amp: str = "auto") -> dict[str, float]:
    """Validation next-code loss (token-weighted), accuracy (argmax over all logits) and perplexity."""
    model = unwrap(model)
    device = next(model.parameters()).device
    model.eval()
    nll, correct, count = 0.0, 0, 0
    for b in batches:
        with autocast_for(device, amp):
            out = model(_to(b, device))
        lg, y = out["logits_eeg"].float(), out["targets_eeg"]
        if not len(y):
            continue
        nll += float(torch.nn.functional.cross_entropy(lg, y, reduction="sum"))
        correct += int((lg.argmax(-1) == y).sum())
        count += len(y)
    if not count:
        return {"loss": float("nan"), "accuracy": float("nan"), "perplexity": float("nan"), "tokens": 0}
    loss = nll / count
    return {"loss": loss, "accuracy": correct / count, "perplexity": math.exp(min(loss, 50.0)), "tokens": count}
