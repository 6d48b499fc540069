"""Random NeuroLM-shaped batches for tests, benchmarks and demos without a corpus."""

from __future__ import annotations

import torch

from neurolm.lm.config import LMConfig
from neurolm.vocab import PAD_INDEX


def random_eeg_batch(cfg: LMConfig, batch: int = 2, n_ch: int = 3, n_sec: int = 4, length: int | None = None,
                     seed: int = 0, n_valid: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Time-major EEG batch: ``codes``, ``x`` (patches), ``ch``, ``time``, ``mask`` [B, L].

    Row r holds ``n_valid[r]`` seconds (default ``n_sec``) of ``n_ch`` channels, then padding
    (channel 136, time 0, code 0, zero patches) up to ``length``.
    """
    g = torch.Generator().manual_seed(seed)
    length = length or n_ch * n_sec
    secs = n_valid or [n_sec] * batch
    tok = cfg.tokenizer
    codes = torch.randint(0, tok.codebook_size, (batch, length), generator=g)
    x = torch.randn(batch, length, tok.patch_size, generator=g) * 0.5
    chans = torch.randperm(min(cfg.chan_rows, PAD_INDEX), generator=g)[:n_ch]
    ch = torch.full((batch, length), PAD_INDEX, dtype=torch.long)
    time = torch.zeros(batch, length, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    for r, s in enumerate(secs):
        n = s * n_ch
        ch[r, :n] = chans.repeat(s)
        time[r, :n] = torch.arange(s).repeat_interleave(n_ch)
        mask[r, :n] = True
    codes = torch.where(mask, codes, torch.zeros_like(codes))
    x = x * mask[..., None]
    return {"codes": codes, "x": x, "ch": ch, "time": time, "mask": mask}
