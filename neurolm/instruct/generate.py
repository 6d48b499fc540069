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


def text_positions(batch: dict[str, torch.Tensor], n_text: int) -> torch.Tensor:
    """Position ids [B, n_text] of text after EEG: each row's own last valid second + 1 onwards."""
    t, valid = batch["time"].long(), batch["mask"].bool()
    last = torch.where(valid, t, torch.full_like(t, -1)).max(dim=1, keepdim=True).values
    return last + 1 + torch.arange(n_text, device=t.device)[None]


def text_hidden(model, batch: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """Backbone outputs [B, n_text, d] at the text positions of EEG followed by ``ids`` [B, n_text]."""
    t, valid = batch["time"].long(), batch["mask"].bool()
    embeds = torch.cat([model.eeg_embeds(batch), model.gpt.wte(ids)], dim=1)
    pos = torch.cat([t, text_positions(batch, ids.shape[1])], dim=1)
    mask = torch.cat([valid, torch.ones_like(ids, dtype=torch.bool)], dim=1)
    return model.hidden(embeds, pos, mask)[:, t.shape[1]:]


def text_logits_at(model, batch: dict[str, torch.Tensor], ids: torch.Tensor,
                   where: torch.Tensor | None = None, n_logits: int = TEXT_LOGITS) -> torch.Tensor:
    """Logits restricted to the first ``n_logits`` entries at text positions ``where`` ([n] indices into
    ``ids``' columns; default: all) → [B, n, n_logits]."""
    h = text_hidden(model, batch, ids)
    if where is not None:
        h = h[:, where]
    return torch.nn.functional.linear(h, model.lm_head.weight[:n_logits])


def repeat_batch(batch: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Each row repeated ``k`` times in place (row r → rows r·k … r·k + k − 1)."""
    return {n: v.repeat_interleave(k, dim=0) for n, v in batch.items()}


@torch.no_grad()
def greedy_generate(model, batch: dict[str, torch.Tensor], prompt: list[int],
                    max_new_tokens: int = MAX_NEW_TOKENS) -> tuple[torch.Tensor, torch.Tensor]:
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
        logits = text_logits_at(model, batch, ids, last)[:, 0].float()
        steps.append(logits)
        ids = torch.cat([ids, logits.argmax(dim=-1, keepdim=True)], dim=1)
    return ids[:, len(prompt):], torch.stack(steps, dim=1)
