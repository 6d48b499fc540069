"""One instruction-tuning step and validation (reference §4.2, §4.4).

:class:`InstructObjective` wraps a ``NeuroLM`` so a step is one module call (what DDP needs): the
instruction loss (cross-entropy over all logits on the supervised answer tokens only; no EEG loss)
plus, as the original, an ordinary text LM loss on a text batch, with equal weights. The 58k-wide
head runs only on the supervised text positions.

Validation: the instruction loss and, per task, the *answer accuracy* with teacher forcing — a
sample counts as right when the argmax over the text logits (the first 50,257, as the original's
generation) is right on every supervised token (answer, " ", EOT; with " (" for TUEV/HMC). It is a
training signal; the task metrics come from ``neurolm evaluate``.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from neurolm.lm.config import EOT_ID, LMTrainConfig
from neurolm.lm.model import NeuroLM
from neurolm.lm.targets import IGNORE, lm_loss
from neurolm.lm.train import lr_at
from neurolm.training.lm_step import accumulate_step, autocast_for, unwrap

_BATCH_KEYS = ("codes", "ch", "time", "mask", "x", "features", "text", "text_targets")


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items() if k in _BATCH_KEYS}


class InstructObjective(nn.Module):
    """``forward(batch, text)`` → ``loss`` = ``loss_instr`` (+ ``loss_text``), ``logits`` and ``targets`` of the
    supervised positions [N, n_logits] / [N], ``rows`` [N] (their batch row)."""

    def __init__(self, model: NeuroLM, positions: str = "own") -> None:
        super().__init__()
        self.model, self.positions = model, positions

    def forward(self, batch: dict[str, torch.Tensor],
                text: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        ids, y = batch["text"], batch["text_targets"]
        h = self.model.eeg_text_hidden(batch, ids, self.positions)[:, batch["codes"].shape[1]:]
        sel = y != IGNORE
        logits = self.model.lm_head(h[sel])
        out = {"loss_instr": lm_loss(logits, y[sel]), "logits": logits, "targets": y[sel],
               "rows": torch.nonzero(sel)[:, 0]}
        out["loss"] = out["loss_instr"]
        if text is not None:
            out["loss_text"] = lm_loss(self.model.forward_text(text[0]), text[1])
            out["loss"] = out["loss"] + out["loss_text"]
        return out


def train_step(objective: nn.Module, opt: torch.optim.Optimizer, step: int, cfg: LMTrainConfig,
               batches: Iterable[dict[str, torch.Tensor]],
               text_batches: Iterable[tuple[torch.Tensor, torch.Tensor]] = (),
               scaler: torch.amp.GradScaler | None = None) -> dict[str, float]:
    """One optimiser step over ``grad_accum`` micro-batches (``objective`` may be DDP-wrapped); → metrics."""
    return accumulate_step(objective, opt, lr_at(step, cfg), batches, text_batches, amp=cfg.amp,
                           grad_clip=cfg.grad_clip, scaler=scaler, loss_key="loss_instr", to_device=to_device)


@torch.no_grad()
def validate(objective: nn.Module, batches: Iterable[dict[str, torch.Tensor]], task_names: tuple[str, ...],
             amp: str = "auto") -> dict:
    """Instruction loss (token-weighted) and per-task teacher-forced answer accuracy (see module doc)."""
    obj = unwrap(objective)
    device = next(obj.parameters()).device
    obj.eval()
    nll, count = 0.0, 0
    right = torch.zeros(len(task_names), dtype=torch.long)
    seen = torch.zeros(len(task_names), dtype=torch.long)
    for b in batches:
        with autocast_for(device, amp):
            out = obj(to_device(b, device))
        lg, y, rows = out["logits"].float(), out["targets"], out["rows"]
        nll += float(torch.nn.functional.cross_entropy(lg, y, reduction="sum"))
        count += len(y)
        wrong = (lg[:, : EOT_ID + 1].argmax(-1) != y).long()
        bad_rows = torch.zeros(len(b["task"]), dtype=torch.long, device=wrong.device).index_add_(0, rows, wrong)
        ok = (bad_rows == 0).cpu().long()
        right.index_add_(0, b["task"], ok)
        seen.index_add_(0, b["task"], torch.ones_like(ok))
    per_task = {name: float(right[i]) / int(seen[i]) for i, name in enumerate(task_names) if int(seen[i])}
    loss = nll / count if count else float("nan")
    acc = float(right.sum()) / int(seen.sum()) if int(seen.sum()) else float("nan")
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)) if count else float("nan"),
            "answer_accuracy": acc, "answer_accuracy_per_task": per_task, "samples": int(seen.sum())}
