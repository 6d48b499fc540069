"""Stage-2 targets and loss (reference §3.3): each EEG token predicts its channel's code one second later.

Why keyed by (channel, second) and not by the original's ``Y[i] = c[i + n_ch]``:
the offset form is only right when every second holds the same channels in the
same order; looking the target up by (channel, time + 1) gives the same answer
there and never pairs a token with a different channel (or with padding) when a
sample is irregular. Tokens with no valid next-second token of their channel
get −1 (ignored), so padding is never a target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -1


def next_second_codes(codes: torch.Tensor, ch: torch.Tensor, time: torch.Tensor,
                      valid: torch.Tensor) -> torch.Tensor:
    """Code targets [B, L] long: the code of the valid token with the same channel at time + 1, else −1."""
    b, n = codes.shape
    valid = valid.bool()
    if n == 0:
        return torch.full_like(codes, IGNORE)
    n_t = int(time.max()) + 2  # time + 1 of the last second stays in range
    n_c = int(ch.max()) + 1
    table = torch.full((b, n_t * n_c), IGNORE, dtype=torch.long, device=codes.device)
    slot = time.long() * n_c + ch.long()
    src = torch.where(valid, codes.long(), torch.full_like(codes, IGNORE, dtype=torch.long))
    # padding writes nowhere: route it to a dummy column that is dropped afterwards
    dummy = n_t * n_c
    table = torch.cat([table, table.new_full((b, 1), IGNORE)], dim=1)
    table.scatter_(1, torch.where(valid, slot, torch.full_like(slot, dummy)), src)
    nxt = torch.where(valid, slot + n_c, torch.full_like(slot, dummy))
    return table.gather(1, nxt)


def code_logit_targets(code_targets: torch.Tensor, text_vocab: int) -> torch.Tensor:
    """EEG code k → output index ``text_vocab + k``; −1 stays −1."""
    return torch.where(code_targets >= 0, code_targets + text_vocab, code_targets)


def shift_text_targets(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A text window [B, L+1] → (inputs [B, L], targets shifted by one [B, L])."""
    return ids[:, :-1], ids[:, 1:]


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over all logits (58,496 for NeuroLM), −1 ignored; 0 (with grad) when nothing counts."""
    flat = targets.reshape(-1)
    if not bool((flat != IGNORE).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), flat, ignore_index=IGNORE)
