"""The per-log-window metrics of tokenizer training (the lr schedule is :mod:`neurolm.training.optim`'s).

Codebook health is what goes wrong first in VQ training (collapse to a few
codes), so every log line reports, besides each loss term:

- ``usage``: fraction of the codebook used at least once in the window;
- ``perplexity``: exp(entropy) of the window's code histogram (= number of
  equally used codes that would give the same entropy);
- ``dead``: codes unused for the last ``dead_window`` steps;
- ``reseeded``: codes re-seeded in the window (see ``TrainConfig.dead_code_every``).

All window state is checkpointed so a resumed run logs exactly what the
uninterrupted run would have.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from neurolm.training.metrics import Panel

LOSS_KEYS = ("total", "commit", "freq", "raw", "domain_eeg", "domain_text")


class MetricWindow:
    """Sums of loss terms and code counts between two log lines, plus per-code last-use steps."""

    def __init__(self, num_codes: int):
        self.num_codes = num_codes
        self.counts = torch.zeros(num_codes, dtype=torch.float64)
        self.last_used = torch.zeros(num_codes, dtype=torch.int64)
        self.sums: dict[str, float] = {}
        self.n = 0
        self.reseeded = 0

    def add(self, terms: dict[str, torch.Tensor], codes: torch.Tensor, valid: torch.Tensor, step: int) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1
        hist = torch.bincount(codes[valid].reshape(-1).cpu(), minlength=self.num_codes).to(torch.float64)
        if dist.is_available() and dist.is_initialized():
            dev = codes.device
            hist = hist.to(dev)
            dist.all_reduce(hist)
            hist = hist.cpu()
        self.counts += hist
        self.last_used[hist > 0] = step

    def dead(self, step: int, window: int) -> torch.Tensor:
        """[K] bool: codes not used in the last ``window`` steps (never before step ``window``)."""
        return (step - self.last_used) >= window

    def flush(self, step: int, dead_window: int, lr: float) -> dict[str, float]:
        """The log line for the window ending at ``step``; resets the window."""
        out: dict[str, float] = {"step": step, "lr": lr}
        for k in LOSS_KEYS:
            if k in self.sums:
                out[k] = self.sums[k] / max(self.n, 1)
        total = self.counts.sum()
        if total > 0:
            p = self.counts[self.counts > 0] / total
            out["perplexity"] = float(torch.exp(-(p * p.log()).sum()))
            out["usage"] = float((self.counts > 0).double().mean())
        out["dead"] = int(self.dead(step, dead_window).sum())
        out["reseeded"] = self.reseeded
        self.counts.zero_()
        self.sums, self.n, self.reseeded = {}, 0, 0
        return out

    def state(self) -> dict:
        return {"counts": self.counts.clone(), "last_used": self.last_used.clone(), "sums": dict(self.sums),
                "n": self.n, "reseeded": self.reseeded}

    def load(self, st: dict) -> None:
        self.counts, self.last_used = st["counts"].clone(), st["last_used"].clone()
        self.sums, self.n, self.reseeded = dict(st["sums"]), int(st["n"]), int(st["reseeded"])


REPORT_COLS = ("step", "lr", *LOSS_KEYS, "usage", "perplexity", "dead", "reseeded")
REPORT_PANELS = (Panel("tokenizer losses", LOSS_KEYS, ylabel="loss"),
                 Panel("codebook", ("usage",), ylabel="codebook usage", ylim=(0, 1.05)))
