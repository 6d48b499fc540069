"""The patch transformer shared by the tokenizer's encoder and its two decoders (reference §2.1).

Module and parameter names follow the original ``NeuralTransformer`` on purpose
(``patch_embed.conv1``, ``blocks.N.attn.c_attn``, ``fc_norm`` ...): published
checkpoints then load by stripping prefixes only, with no renaming table to rot.

Deviation from the reference text: TemporalConv pads (0, 7), not (1, 7). The
patch axis is the conv's height; padding it would add two phantom patches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurolm.tokenizer.config import TokenizerConfig


class PatchGroupNorm(nn.GroupNorm):
    """GroupNorm over a sample's patches, with a choice of which patches give the statistics.

    ``mode="reference"`` is plain ``nn.GroupNorm``: each channel group is normalised
    over *all* patches of the sample, padding included, as the original does (and
    as published weights were trained). That mixes seconds (the conv features of
    second 0 depend on second 50) and makes features depend on how much padding a
    sample has. The other modes take the statistics of patch l over the valid
    patches (``mode="full"``) or over the valid patches at seconds ≤ time[l]
    (``mode="causal-by-second"``). With no padding, ``full`` equals ``reference``.
    """

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None, time: torch.Tensor | None = None,
                mode: str = "full") -> torch.Tensor:  # x [B, C, L, T]
        if valid is None or mode == "reference":
            return super().forward(x)
        b, c, n, t = x.shape
        g = self.num_groups
        xg = x.float().reshape(b, g, c // g, n, t)
        w = (valid | ~valid.any(dim=1, keepdim=True)).float()  # an all-padding sample uses every patch
        s1 = xg.sum(dim=(2, 4)) * w[:, None, :]  # [B, G, L] per-patch sums
        s2 = (xg * xg).sum(dim=(2, 4)) * w[:, None, :]
        if mode == "causal-by-second":  # sums per second, cumulated over seconds, read back at each patch
            slots = n  # seconds < patches always (≥ 1 patch per second); static: no host sync
            idx = time[:, None, :].expand(-1, g, -1)

            def cum(v: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
                z = torch.zeros(*v.shape[:-1], slots, dtype=v.dtype, device=v.device)
                return z.scatter_add_(-1, i, v).cumsum(-1).gather(-1, i)

            s1, s2, cnt = cum(s1, idx), cum(s2, idx), cum(w, time)[:, None, :]
        else:
            s1, s2, cnt = s1.sum(-1, keepdim=True), s2.sum(-1, keepdim=True), w.sum(-1, keepdim=True)[:, None, :]
        cnt = cnt * (c // g) * t
        mean = s1 / cnt
        var = (s2 / cnt - mean * mean).clamp_min(0.0)
        xn = (xg - mean[:, :, None, :, None]) * torch.rsqrt(var + self.eps)[:, :, None, :, None]
        return (xn.reshape(b, c, n, t) * self.weight[None, :, None, None] + self.bias[None, :, None, None]).to(x.dtype)


class TemporalConv(nn.Module):
    """Per-patch conv stem: 200 samples → 25 steps × C channels → Linear → d_model.

    Why convs on a [B, 1, L, 200] image with (1, k) kernels: each patch is
    convolved independently; the GroupNorms normalise over patches (see
    :class:`PatchGroupNorm` for which patches; ``mode`` is passed to it).
    """

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        c = cfg.conv_out_chans
        self.conv1 = nn.Conv2d(1, c, kernel_size=(1, 15), stride=(1, 8), padding=(0, 7))
        self.norm1 = PatchGroupNorm(4, c)
        self.conv2 = nn.Conv2d(c, c, kernel_size=(1, 3), padding=(0, 1))
        self.norm2 = PatchGroupNorm(4, c)
        self.conv3 = nn.Conv2d(c, c, kernel_size=(1, 3), padding=(0, 1))
        self.norm3 = PatchGroupNorm(4, c)
        self.l = nn.Sequential(nn.Linear(cfg.conv_len * c, cfg.d_model), nn.GELU())

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None, time: torch.Tensor | None = None,
                mode: str = "full") -> torch.Tensor:  # x [B, L, P]
        x = x.unsqueeze(1)
        x = F.gelu(self.norm1(self.conv1(x), valid, time, mode))
        x = F.gelu(self.norm2(self.conv2(x), valid, time, mode))
        x = F.gelu(self.norm3(self.conv3(x), valid, time, mode))  # [B, C, L, T]
        b, c, n, t = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, n, t * c)  # time-major then channel, as the original flattens
        return self.l(x)


class SelfAttention(nn.Module):
    """Multi-head attention through SDPA with a boolean mask (True = may attend)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (t.view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=False)
        return self.c_proj(y.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_model, 4 * cfg.d_model, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LN transformer block, no biases anywhere (reference §9.2)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=1e-5, bias=False)
        self.attn = SelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=1e-5, bias=False)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


def attention_mask(valid: torch.Tensor, time: torch.Tensor, mode: str) -> torch.Tensor:
    """Boolean SDPA mask [B, 1, L, L] (True = query may attend to key).

    ``full``: every query sees every valid key. ``causal-by-second``: additionally
    a query at second t sees only keys at seconds ≤ t, so codes of second t never
    depend on later seconds. A sample with no valid token at all sees everything
    (otherwise every softmax row would be empty and produce NaNs).
    """
    kv = valid | ~valid.any(dim=1, keepdim=True)  # [B, L]
    allowed = kv[:, None, :].expand(-1, valid.shape[1], -1)  # [B, Lq, Lk]
    if mode == "causal-by-second":
        allowed = allowed & (time[:, None, :] <= time[:, :, None])
    elif mode != "full":
        raise ValueError(f"unknown attention mode {mode!r}")
    return allowed.unsqueeze(1)


class NeuralTransformer(nn.Module):
    """Patch features + channel/time embeddings → N blocks → ``fc_norm`` on every token.

    ``in_chans == 1``: the EEG encoder (TemporalConv stem). Otherwise a decoder whose
    stem is ``Linear(in_chans, d)`` over quantised codes.
    """

    def __init__(self, cfg: TokenizerConfig, n_layers: int, in_chans: int = 1, attention: str = "full"):
        super().__init__()
        self.attention = attention
        # which patches the stem's GroupNorm statistics come from (see PatchGroupNorm)
        self.norm_mode = "reference" if cfg.conv_norm == "reference" else attention
        if self.norm_mode == "reference" and attention != "full":
            raise ValueError('conv_norm="reference" needs full attention (it mixes every second of the sample)')
        self.patch_embed = TemporalConv(cfg) if in_chans == 1 else nn.Linear(in_chans, cfg.d_model)
        self.pos_embed = nn.Embedding(cfg.pos_rows, cfg.d_model)
        self.time_embed = nn.Embedding(cfg.time_rows, cfg.d_model)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(n_layers)])
        self.fc_norm = nn.LayerNorm(cfg.d_model, eps=1e-6)
        self.apply(init_weights)
        if cfg.embed_init_std is not None:
            nn.init.normal_(self.pos_embed.weight, std=cfg.embed_init_std)
            nn.init.normal_(self.time_embed.weight, std=cfg.embed_init_std)
        for layer_id, blk in enumerate(self.blocks, start=1):  # GPT-2-style residual scaling
            with torch.no_grad():
                blk.attn.c_proj.weight.div_(math.sqrt(2.0 * layer_id))
                blk.mlp.c_proj.weight.div_(math.sqrt(2.0 * layer_id))

    def forward(self, x: torch.Tensor, ch: torch.Tensor, time: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x [B, L, P or in_chans], ch/time [B, L] long, valid [B, L] bool → features [B, L, d]."""
        mask = attention_mask(valid, time, self.attention)
        if isinstance(self.patch_embed, TemporalConv):
            x = self.patch_embed(x, valid, time, self.norm_mode)
        else:
            x = self.patch_embed(x)
        x = x + self.pos_embed(ch) + self.time_embed(time)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.fc_norm(x)


def init_weights(m: nn.Module) -> None:
    """trunc_normal(0.02) Linears with zero biases; unit/zero LayerNorms (embeddings keep N(0,1))."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def task_head(d_in: int, d_out: int) -> nn.Sequential:
    """Linear → Tanh → Linear, the original's projection heads (to codes, to FFT bins, to samples)."""
    head = nn.Sequential(nn.Linear(d_in, d_in), nn.Tanh(), nn.Linear(d_in, d_out))
    head.apply(init_weights)
    return head
