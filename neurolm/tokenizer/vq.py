"""The text-aligned VQ tokenizer: encoder → quantizer → two decoders, plus a domain classifier.

Layout and attribute names mirror the original ``VQ_Align`` (``VQ.encoder``,
``VQ.quantize``, ``VQ.decoder_freq``, ``VQ.decoder_raw``, ``domain_classifier``)
so published weights load by name (see :mod:`.weights`).

Why a domain classifier with gradient reversal: the classifier learns to tell
EEG encoder features from frozen text-token embeddings; the reversed gradient
pushes the encoder to make them indistinguishable, i.e. to put EEG features in
the language model's embedding space (reference §2.4, DANN).

The frozen text embedding table (``wte``, 50257×768 for GPT-2) is a
*non-persistent* buffer: it is rebuilt from ``config.text_embedding`` when
training, never written into tokenizer checkpoints (154 MB of copies of GPT-2),
and not needed to encode EEG.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from neurolm.tokenizer.config import TokenizerConfig
from neurolm.tokenizer.model import NeuralTransformer, init_weights, task_head
from neurolm.tokenizer.quantizer import NormEMAVectorQuantizer


class GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by ``-alpha``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad.neg() * ctx.alpha, None


def dann_alpha(progress: float) -> float:
    """DANN reversal strength ``2/(1+exp(-10p)) - 1`` for training progress p ∈ [0, 1]."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class VQ(nn.Module):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.encoder = NeuralTransformer(cfg, cfg.n_enc_layers, in_chans=1, attention=cfg.encoder_attention)
        self.decoder_freq = NeuralTransformer(cfg, cfg.n_dec_layers, in_chans=cfg.code_dim)
        self.decoder_raw = NeuralTransformer(cfg, cfg.n_dec_layers, in_chans=cfg.code_dim)
        self.quantize = NormEMAVectorQuantizer(cfg.codebook_size, cfg.code_dim, cfg.beta, cfg.ema_decay,
                                               cfg.kmeans_iters)
        self.encode_task_layer = task_head(cfg.d_model, cfg.code_dim)
        self.decode_task_layer_freq = task_head(cfg.d_model, cfg.freq_bins)
        self.decode_task_layer_raw = task_head(cfg.d_model, cfg.patch_size)

    def encode(self, x, ch, time, valid):
        """→ (z_q [B,L,code_dim], codes [B,L], commitment loss, encoder features [B,L,d])."""
        feats = self.encoder(x, ch, time, valid)
        with torch.autocast(device_type=x.device.type, enabled=False):  # projection AND lookup/EMA in fp32
            z = self.encode_task_layer(feats.float())
            z_q, commit, codes = self.quantize(z, valid)
        return z_q, codes, commit, feats

    def decode(self, z_q, ch, time, valid):
        """Both decoders see the whole sample (bidirectional): only the encoder must be causal."""
        rec_freq = self.decode_task_layer_freq(self.decoder_freq(z_q, ch, time, valid))
        rec_raw = self.decode_task_layer_raw(self.decoder_raw(z_q, ch, time, valid))
        return rec_freq, rec_raw


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """MSE over valid tokens only (the original averages over padding too, diluting the loss)."""
    if not valid.any():
        return pred.sum() * 0.0
    return F.mse_loss(pred.float()[valid], target.float()[valid])


class VQTokenizer(nn.Module):
    """``VQ_Align``: the tokenizer plus its text-alignment head. Use :meth:`encode_codes` to tokenize."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.config = cfg
        self.VQ = VQ(cfg)
        self.domain_classifier = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.domain_hidden), nn.GELU(), nn.Linear(cfg.domain_hidden, 2))
        self.domain_classifier.apply(init_weights)
        self.register_buffer("wte", None, persistent=False)

    def attach_text_embedding(self, table: torch.Tensor) -> None:
        """Install the frozen text-token embedding table [vocab, d_model] used for alignment."""
        if table.ndim != 2 or table.shape[1] != self.config.d_model:
            raise ValueError(f"text embedding must be [vocab, {self.config.d_model}], got {tuple(table.shape)}")
        self.wte = table.detach().to(self.domain_classifier[0].weight.device, torch.float32)

    @torch.no_grad()
    def encode_codes(self, x: torch.Tensor, ch: torch.Tensor, time: torch.Tensor,
                     mask: torch.Tensor) -> torch.Tensor:
        """Codes [B, L] long for patches x [B, L, 200]; padded positions get code -1."""
        valid = mask.bool()
        feats = self.VQ.encoder(x.float(), ch.long(), time.long(), valid)
        with torch.autocast(device_type=x.device.type, enabled=False):  # projection and lookup in fp32, as in training
            z = F.normalize(self.VQ.encode_task_layer(feats.float()), dim=-1)
            codes = self.VQ.quantize.codes(z)
        return torch.where(valid, codes, torch.full_like(codes, -1))

    @torch.no_grad()
    def encode_features(self, x, ch, time, mask) -> torch.Tensor:
        """Continuous encoder features [B, L, d] (what NeuroLM stage 2 feeds to the GPT)."""
        return self.VQ.encoder(x.float(), ch.long(), time.long(), mask.bool())

    def forward(self, batch: dict[str, torch.Tensor], alpha: float = 0.0,
                text_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Training step: → (total loss, detached loss terms, codes [B, L]).

        ``batch`` holds x, ch, time, mask, y_freq, y_raw (see :mod:`.data`).
        """
        x, ch, time, valid = batch["x"], batch["ch"], batch["time"], batch["mask"].bool()
        z_q, codes, commit, feats = self.VQ.encode(x, ch, time, valid)
        rec_freq, rec_raw = self.VQ.decode(z_q, ch, time, valid)
        loss_freq = _masked_mse(rec_freq, batch["y_freq"], valid)
        loss_raw = _masked_mse(rec_raw, batch["y_raw"], valid)
        logits = self.domain_classifier(GradReverse.apply(feats, alpha)).float()
        if valid.any():
            dom_eeg = F.cross_entropy(logits[valid], torch.zeros_like(codes[valid]))
        else:
            dom_eeg = logits.sum() * 0.0
        total = commit + loss_freq + loss_raw + dom_eeg
        terms = {"commit": commit, "freq": loss_freq, "raw": loss_raw, "domain_eeg": dom_eeg}
        if text_ids is not None and text_ids.numel() and self.wte is not None:
            emb = self.wte[text_ids].detach().to(feats.dtype)
            tl = self.domain_classifier(emb).float().reshape(-1, 2)
            dom_text = F.cross_entropy(tl, torch.ones(tl.shape[0], dtype=torch.long, device=tl.device))
            total = total + dom_text
            terms["domain_text"] = dom_text
        terms["total"] = total
        return total, {k: v.detach() for k, v in terms.items()}, codes
