"""Typed, frozen configuration of the text-aligned VQ tokenizer and of its training.

Why two configs: :class:`TokenizerConfig` fixes the *model* (its hash names a
checkpoint and guards every load), :class:`TrainConfig` only steers optimisation
(changing the learning rate must not make a checkpoint "incompatible").

Presets (see :func:`preset`):

- ``tiny``: CPU-sized, for tests, demos and CI (d=64, 2 heads, 2 encoder layers).
- ``base``: the published NeuroLM tokenizer (reference §2): d=768, 12 heads,
  12 encoder layers, two 4-layer decoders, 8192×128 codebook.

``encoder_attention``:

- ``"causal-by-second"`` (default for new training): a token at second *t* attends
  only to tokens at seconds ≤ t. The original encoder is bidirectional, so the
  feature at (c, t) already sees the patch at (c, t+1) that stage-2 pretraining
  asks the GPT to predict (reference §3.4, the leak). Our default removes it.
- ``"full"``: bidirectional attention with a key-padding mask; this is what the
  published ``VQ.pt`` was trained with, and what :mod:`.weights` imports into.

``conv_norm`` (which patches the conv stem's GroupNorms take their statistics from):

- ``"reference"``: plain ``nn.GroupNorm`` over every patch of the sample, padding
  included, exactly as the original. Published weights were trained with it, so it
  is the default with ``full`` attention and for imports. It mixes all seconds,
  so it is refused with ``causal-by-second``.
- ``"valid-patches"``: statistics over valid patches only (and, with
  ``causal-by-second``, only over seconds ≤ t). Default with ``causal-by-second``.

Left unset, ``conv_norm`` follows ``encoder_attention``; the resolved value is
stored (and hashed) with every checkpoint, so a weights file says which it used.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from neurolm.config_files import read_model_train_yaml
from neurolm.errors import ConfigError
from neurolm.samples import CHANNEL_ROWS, MAX_TOKENS, PATCH, TIME_ROWS

Attention = Literal["full", "causal-by-second"]
ConvNorm = Literal["reference", "valid-patches"]
_RANDOM_TEXT = re.compile(r"^random:(\d+)x(\d+)$")


class TokenizerConfig(BaseModel):
    """Architecture of the VQ tokenizer (encoder, quantizer, two decoders, domain classifier)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    patch_size: int = Field(PATCH, description="samples per patch (1 s at 200 Hz)")
    max_tokens: int = Field(MAX_TOKENS, ge=1, description="patches per sample (padded length)")
    d_model: int = Field(768, ge=8)
    n_heads: int = Field(12, ge=1)
    n_enc_layers: int = Field(12, ge=1)
    n_dec_layers: int = Field(4, ge=1)
    conv_out_chans: int = Field(16, ge=4, description="TemporalConv channels; GroupNorm(4, .) needs a multiple of 4")
    pos_rows: int = Field(CHANNEL_ROWS, description="rows of the channel (spatial) embedding")
    time_rows: int = Field(TIME_ROWS, description="rows of the time embedding: max seconds per sample")
    codebook_size: int = Field(8192, ge=2)
    code_dim: int = Field(128, ge=2)
    freq_bins: int = Field(100, ge=1, description="FFT amplitude bins predicted by decoder_freq")
    ema_decay: float = Field(0.99, gt=0.0, lt=1.0)
    kmeans_iters: int = Field(10, ge=0)
    beta: float = Field(1.0, description="commitment weight")
    domain_hidden: int = 256
    embed_init_std: float | None = Field(
        None, description="std of the channel/time embedding init; None = PyTorch's N(0,1) as the original. "
        "Small models learn much faster with 0.02: N(0,1) embeddings drown the 0.02-scale patch features")
    encoder_attention: Attention = "causal-by-second"
    conv_norm: ConvNorm = Field(
        "valid-patches", description='conv-stem GroupNorm statistics: "reference" (whole sample, padding '
        'included, as the original) or "valid-patches"; unset = "reference" with full attention, '
        '"valid-patches" with causal-by-second')
    text_embedding: str = Field(
        "gpt2",
        description='frozen text-token embeddings for alignment: "gpt2" (HF from_pretrained), '
        '"random:<vocab>x<dim>" (offline, tests) or a path to a safetensors file',
    )

    @model_validator(mode="before")
    @classmethod
    def _default_conv_norm(cls, data):
        """An unset (or None) ``conv_norm`` follows ``encoder_attention``: the original's norm with full attention."""
        if isinstance(data, dict) and data.get("conv_norm") is None:
            full = data.get("encoder_attention", "causal-by-second") == "full"
            data = {**data, "conv_norm": "reference" if full else "valid-patches"}
        return data

    @field_validator("text_embedding")
    @classmethod
    def _check_text(cls, v: str) -> str:
        if v != "gpt2" and not _RANDOM_TEXT.match(v) and not v.endswith(".safetensors"):
            raise ValueError('text_embedding must be "gpt2", "random:<vocab>x<dim>" or a .safetensors path')
        return v

    @model_validator(mode="after")
    def _check_shapes(self) -> "TokenizerConfig":
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.conv_out_chans % 4:
            raise ValueError("conv_out_chans must be a multiple of 4 (GroupNorm(4, ·))")
        if self.conv_norm == "reference" and self.encoder_attention == "causal-by-second":
            raise ValueError('conv_norm="reference" normalises over the whole sample, so a causal-by-second '
                             'encoder would see later seconds; use conv_norm="valid-patches"')
        if self.patch_size % 8:
            raise ValueError("patch_size must be a multiple of 8 (TemporalConv stride 8)")
        if self.freq_bins > self.patch_size // 2:
            raise ValueError("freq_bins must be ≤ patch_size/2 (one-sided spectrum)")
        m = _RANDOM_TEXT.match(self.text_embedding)
        if m and int(m.group(2)) != self.d_model:
            raise ValueError(f"text embedding dim {m.group(2)} must equal d_model={self.d_model}")
        return self

    @property
    def conv_len(self) -> int:
        """Length of a patch after TemporalConv's stride-8 first layer (200 → 25)."""
        return (self.patch_size + 2 * 7 - 15) // 8 + 1

    def config_hash(self) -> str:
        """sha256[:16] of the canonical JSON of every architectural field (not ``name``)."""
        payload = self.model_dump(exclude={"name"})
        return _hash(payload)

    def legacy_config_hash(self) -> str:
        """The hash this config had before ``conv_norm`` existed (checkpoints written then store it)."""
        return _hash(self.model_dump(exclude={"name", "conv_norm"}))


def _hash(payload: dict) -> str:
    raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


class TrainConfig(BaseModel):
    """Optimisation settings (reference §2.5 defaults where they apply); not part of the model hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1, description="samples per micro-batch per process")
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(5e-5, gt=0)
    min_lr: float = Field(1e-5, ge=0)
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    text_batch_size: int = Field(16, ge=0, description="text sequences per step for the domain classifier")
    text_seq_len: int = Field(1024, ge=1)
    log_every: int = Field(10, ge=1)
    ckpt_every: int = Field(200, ge=1)
    keep_last: int = Field(3, ge=1)
    domain_alpha: float = Field(1.0, ge=0.0, description="scale of the DANN reversal strength (1 = reference)")
    dead_code_every: int = Field(0, ge=0, description="re-seed codes unused for this many steps; 0 = never")
    seed: int = 0
    num_workers: int = Field(0, ge=0)
    amp: Literal["auto", "off"] = "auto"
    compile: bool = False

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.min_lr > self.lr:
            raise ValueError("min_lr must be ≤ lr")
        return self


_PRESETS: dict[str, dict] = {
    # beta 0 (no commitment loss; the EMA codebook still follows the encoder): with the original's 1 the
    # tiny encoder collapses within ~50 steps, every patch of a sample mapping to one direction (mean
    # pairwise cosine of the code-space vectors 0.996 on the demo store, 0.26 with beta 0), so its codes
    # were a hash of rounding noise with no sequential structure (issue 12)
    "tiny": dict(
        name="tiny", max_tokens=256, d_model=64, n_heads=2, n_enc_layers=2, n_dec_layers=1,
        conv_out_chans=8, codebook_size=512, code_dim=32, text_embedding="random:1000x64", embed_init_std=0.02,
        beta=0.0,
    ),
    "base": dict(name="base"),
}

_TRAIN_PRESETS: dict[str, dict] = {
    # domain_alpha 0.1: at this size the full-strength reversal collapses the codebook in ~50 steps
    "tiny": dict(steps=200, batch_size=4, lr=2e-3, min_lr=2e-4, warmup_steps=20, text_batch_size=4,
                 text_seq_len=64, log_every=10, ckpt_every=50, dead_code_every=25, domain_alpha=0.1),
    "base": dict(steps=50_000, batch_size=64, lr=5e-5, min_lr=1e-5, warmup_steps=5_000, text_batch_size=16,
                 text_seq_len=1024, log_every=50, ckpt_every=1_000, dead_code_every=0),
}


def preset(name: str, **overrides) -> TokenizerConfig:
    """A named model preset, optionally with field overrides; ConfigError on bad names/values."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown tokenizer config {name!r}; choose one of {sorted(_PRESETS)}")
    try:
        return TokenizerConfig(**{**_PRESETS[name], **overrides})
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise ConfigError(f"invalid tokenizer config: {exc}") from exc


def train_preset(name: str, **overrides) -> TrainConfig:
    """Training defaults that go with a model preset."""
    if name not in _TRAIN_PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; choose one of {sorted(_TRAIN_PRESETS)}")
    try:
        return TrainConfig(**{**_TRAIN_PRESETS[name], **overrides})
    except ValueError as exc:
        raise ConfigError(f"invalid training config: {exc}") from exc


def load_configs(name_or_path: str, **train_overrides) -> tuple[TokenizerConfig, TrainConfig]:
    """(model, training) config from a preset name ("tiny", "base") or a YAML file.

    YAML layout: ``model: {preset: tiny, <field>: value ...}`` and
    ``train: {preset: tiny, <field>: value ...}``; unknown fields are errors.
    ``train_overrides`` whose value is None are ignored (unset CLI options).
    """
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    if name_or_path in _PRESETS:
        return preset(name_or_path), train_preset(name_or_path, **overrides)
    model, train = read_model_train_yaml(name_or_path, _PRESETS)
    cfg = preset(model.pop("preset", "base"), **model)
    tcfg = train_preset(train.pop("preset", cfg.name if cfg.name in _TRAIN_PRESETS else "base"), **{**train, **overrides})
    return cfg, tcfg
