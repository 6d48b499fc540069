"""Capture and restore every random number generator a training step draws from (torch, CUDA, Python)."""

from __future__ import annotations

import random

import torch


def rng_state() -> dict:
    """The torch CPU, Python and (when present) CUDA generator states, for a checkpoint."""
    st = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    """Restore what :func:`rng_state` captured (the Python state may have come back as lists)."""
    torch.set_rng_state(st["torch"])
    v, inner, gauss = st["python"]
    random.setstate((v, tuple(inner), gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
