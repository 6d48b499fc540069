"""The "stair" attention mask of NeuroLM stage 2 (reference §3.4), as a pure function.

Why a function of time indices and not of a channel count: the original builds
``tril(ones(L, L))``, opens the ``C × C`` block of every second and closes the
padded keys, which assumes every second holds exactly ``C`` tokens. Stated on
the time index instead — *a query at second t may attend to every valid key at
second ≤ t* — it is the same matrix for the original's layout (time-major, C
channels per second, padding at the end) and stays right for any layout,
including text appended after EEG when each text token gets its own step index
(then text is causal and sees all EEG before it).

Padded query rows: their outputs are never used, but an all-masked row makes
SDPA return NaN (and eager with −inf spreads it). A padded query attends to
itself only, so every row has at least one visible key.

Two encodings, because transformers' attention implementations read masks
differently (STACK_FACTS.md): SDPA takes a bool mask (True = may attend); eager
*adds* the mask to the scores, so it needs 0 / ``finfo(dtype).min`` floats
(−inf would give NaN rows). Both are built on the device of the inputs: sending
``[B, L]`` indices is ~1000× less traffic than a ``[B, 1, L, L]`` mask.
"""

from __future__ import annotations

import torch


def stair_mask(time: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Bool mask [B, 1, L, L]: query q may attend key k iff k is valid and time[k] ≤ time[q].

    ``time`` [B, L] integer step index (the second for EEG tokens), ``valid`` [B, L] bool.
    A padded query sees only itself.
    """
    if time.shape != valid.shape or time.dim() != 2:
        raise ValueError(f"time and valid must both be [B, L], got {tuple(time.shape)} and {tuple(valid.shape)}")
    valid = valid.bool()
    allowed = (time[:, None, :] <= time[:, :, None]) & valid[:, None, :]  # [B, Lq, Lk]
    eye = torch.eye(time.shape[1], dtype=torch.bool, device=time.device)
    allowed = torch.where(valid[:, :, None], allowed, eye[None])
    return allowed.unsqueeze(1)


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A bool mask as 0 (may attend) / ``finfo(dtype).min`` (masked), for eager attention."""
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    low = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, low)


def stair_mask_float(time: torch.Tensor, valid: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """:func:`stair_mask` as an additive float mask [B, 1, L, L] for eager attention."""
    return additive_mask(stair_mask(time, valid), dtype)


def causal_steps(batch: int, length: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Step indices 0..L-1 for every row: with :func:`stair_mask` this is plain causal attention."""
    return torch.arange(length, device=device).expand(batch, length)
