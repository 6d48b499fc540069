"""Text logits after EEG and greedy generation with a correct mask (reference §4.5, STACK_FACTS.md).

The original's ``generate()`` extends its attention mask with rows of ones concatenated as floats:
from the second generated token on, SDPA reads the promoted 0/1 mask as *additive* and nothing is
masked (padded EEG slots included). Here every step recomputes the whole sequence through the same
stair mask as training (:func:`neurolm.lm.mask.stair_mask`: a text token sees the valid EEG tokens
and the text before it), which at ≤ 276 + 80 tokens costs a few forward passes and cannot drift
from :meth:`NeuroLM.forward_eeg_text`.

:func:`text_logits_at` is ``forward_eeg_text`` evaluated only where logits are needed and only on
the first ``TEXT_LOGITS`` (50,257) entries, as the original restricts them: the head runs on a few
rows instead of every EEG position (58k logits × 356 positions × batch would be gigabytes).
``tests/test_instruct_eval.py`` checks it equals ``forward_eeg_text``.
"""

from __future__ import annotations

import torch

from neurolm.lm.config import EOT_ID

TEXT_LOGITS = EOT_ID + 1  # the original: logits[:, :50257] (GPT-2's vocabulary, [SEP] excluded)
MAX_NEW_TOKENS = 5


def text_hidden(model, batch: dict[str, torch.Tensor], ids: torch.Tensor, positions: str = "own") -> torch.Tensor:
    """Backbone outputs [B, n_text, d] at the text positions of EEG followed by ``ids`` [B, n_text].

    ``positions``: ``"own"`` (each row's last valid second + 1) or ``"reference"`` (the batch's, as
    the original; see :meth:`NeuroLM.eeg_text_hidden`).
    """
    return model.eeg_text_hidden(batch, ids, positions)[:, batch["time"].shape[1]:]


def text_logits_at(model, batch: dict[str, torch.Tensor], ids: torch.Tensor,
                   where: torch.Tensor | None = None, n_logits: int = TEXT_LOGITS,
                   positions: str = "own") -> torch.Tensor:
    """Logits restricted to the first ``n_logits`` entries at text positions ``where`` ([n] indices into
    ``ids``' columns; default: all) → [B, n, n_logits]."""
    h = text_hidden(model, batch, ids, positions)
    if where is not None:
        h = h[:, where]
    return torch.nn.functional.linear(h, model.lm_head.weight[:n_logits])


def repeat_batch(batch: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Each row repeated ``k`` times in place (row r → rows r·k … r·k + k − 1)."""
    return {n: v.repeat_interleave(k, dim=0) for n, v in batch.items()}


@torch.no_grad()
def greedy_generate(model, batch: dict[str, torch.Tensor], prompt: list[int],
                    max_new_tokens: int = MAX_NEW_TOKENS, positions: str = "own") -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy continuation of ``prompt`` after each row's EEG.

    → (generated ids [B, max_new_tokens], logits of each step [B, max_new_tokens, TEXT_LOGITS]).
    Every step recomputes the full sequence with the stair mask (see module doc); no early stop,
    as the original generates exactly ``max_new_tokens``.
    """
    b = batch["time"].shape[0]
    dev = batch["time"].device
    ids = torch.tensor(prompt, dtype=torch.long, device=dev).expand(b, len(prompt)).clone()
    steps = []
    for _ in range(int(max_new_tokens)):
        last = torch.tensor([ids.shape[1] - 1], device=dev)
        logits = text_logits_at(model, batch, ids, last, positions=positions)[:, 0].float()
        steps.append(logits)
        ids = torch.cat([ids, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return ids[:, len(prompt):], torch.stack(steps, dim=1)
