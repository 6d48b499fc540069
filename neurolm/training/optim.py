"""AdamW with weight decay on matrices only, and the warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math

import torch


def make_adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
               device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay only on tensors with ≥ 2 dims (matmuls, embeddings), never on norms/biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=lr, betas=betas, **extra)


def lr_at(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """Linear warm-up from 0 over ``warmup`` steps, then cosine decay to ``min_lr`` at ``total``."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    if total <= warmup:
        return lr
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate (the schedule is applied before each step)."""
    for g in opt.param_groups:
        g["lr"] = lr
