"""Typed, frozen configuration of the NeuroLM stage-2 language model.

Vocabulary layout (reference §3.1): GPT-2's input table is enlarged to
``text_vocab = 50304`` rows (``[SEP]`` = 50257); the output head has
``text_vocab + codebook_size`` logits and EEG code ``k`` is logit ``text_vocab + k``.

``input_mode``:

- ``"codes"`` (default, a documented deviation): EEG inputs are the tokenizer's
  codebook vectors of the materialised corpus codes, projected to the model width
  by a trainable Linear. No tokenizer runs during training.
- ``"features"``: EEG inputs are the frozen tokenizer encoder's continuous
  features (the original; needed for the published NeuroLM-B/L/XL weights),
  passed through ``encode_transform_layer`` (Identity when the widths agree,
  Linear + GELU otherwise).

``tokenizer`` is the architecture of the tokenizer whose codes (and, in
``features`` mode, whose encoder) the model uses; its codebook size fixes the
number of EEG logits and its code/feature widths fix the input projection.

Presets: ``tiny`` (CPU tests and demo), ``B``, ``L``, ``XL`` (GPT-2, -medium, -xl).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from neurolm.config_files import read_model_train_yaml
from neurolm.errors import ConfigError
from neurolm.tokenizer.config import TokenizerConfig
from neurolm.tokenizer.config import preset as tokenizer_preset

InputMode = Literal["codes", "features"]
AttnImpl = Literal["sdpa", "eager"]

SEP_ID = 50257  # NeuroLM's [SEP]: the first of the 47 rows added to GPT-2's table
EOT_ID = 50256  # GPT-2 <|endoftext|>
TEXT_VOCAB = 50304


class LMConfig(BaseModel):
    """Architecture of the stage-2 model (the backbone is a transformers ``GPT2Model``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    n_layer: int = Field(12, ge=1)
    n_head: int = Field(12, ge=1)
    n_embd: int = Field(768, ge=8)
    block_size: int = Field(1024, ge=2, description="rows of GPT-2's position table (seconds for EEG)")
    text_vocab: int = Field(TEXT_VOCAB, ge=EOT_ID + 1, description="input table rows; EEG logits start here")
    sep_id: int = SEP_ID
    chan_rows: int = Field(256, ge=1, description="rows of the channel embedding added to EEG inputs")
    input_mode: InputMode = "codes"
    attn_implementation: AttnImpl = "sdpa"
    layer_norm_epsilon: float = 1e-5
    tokenizer: TokenizerConfig = Field(default_factory=lambda: tokenizer_preset("base"))

    @model_validator(mode="after")
    def _check(self) -> "LMConfig":
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if not EOT_ID < self.sep_id < self.text_vocab:
            raise ValueError(f"sep_id must lie in ({EOT_ID}, {self.text_vocab})")
        return self

    @property
    def codebook_size(self) -> int:
        return self.tokenizer.codebook_size

    @property
    def n_logits(self) -> int:
        """Output head size: text vocabulary + one logit per EEG code (58,496 for NeuroLM)."""
        return self.text_vocab + self.codebook_size

    @property
    def input_dim(self) -> int:
        """Width of an EEG input vector before projection: code_dim or encoder feature width."""
        return self.tokenizer.code_dim if self.input_mode == "codes" else self.tokenizer.d_model

    def gpt2_config(self):
        """The transformers ``GPT2Config`` of the backbone (exact GELU, no dropout, untied)."""
        from transformers import GPT2Config

        return GPT2Config(
            vocab_size=self.text_vocab, n_positions=self.block_size, n_embd=self.n_embd, n_layer=self.n_layer,
            n_head=self.n_head, activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            layer_norm_epsilon=self.layer_norm_epsilon, tie_word_embeddings=False, use_cache=False,
            bos_token_id=EOT_ID, eos_token_id=EOT_ID, attn_implementation=self.attn_implementation,
        )

    def config_hash(self) -> str:
        """sha256[:16] of the canonical JSON of every architectural field (not ``name``)."""
        payload = self.model_dump(mode="json", exclude={"name", "attn_implementation"})
        payload["tokenizer"] = self.tokenizer.config_hash()
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


_GPT2_SIZES = {"B": (12, 12, 768), "L": (24, 16, 1024), "XL": (48, 25, 1600)}


def _preset_fields(name: str) -> dict:
    if name == "tiny":
        return dict(name="tiny", n_layer=2, n_head=2, n_embd=64, tokenizer=tokenizer_preset("tiny"))
    if name in _GPT2_SIZES:
        n_layer, n_head, n_embd = _GPT2_SIZES[name]
        return dict(name=name, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    raise ConfigError(f"unknown LM config {name!r}; choose one of {PRESETS}")


PRESETS = ("tiny", "B", "L", "XL")
# GPT-2 checkpoints the original starts from (reference §3.1)
GPT2_INIT = {"B": "gpt2", "L": "gpt2-medium", "XL": "gpt2-xl"}


def lm_preset(name: str, **overrides) -> LMConfig:
    """A named preset with field overrides; ConfigError on bad names or values."""
    try:
        return LMConfig(**{**_preset_fields(name), **overrides})
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise ConfigError(f"invalid LM config: {exc}") from exc


class LMTrainConfig(BaseModel):
    """Optimisation of stage 2 (reference §3.5 defaults); not part of the model hash.

    The length is given in epochs of the corpus's train split (the original: 20 epochs, 2 of
    warm-up) unless ``steps`` fixes it; :meth:`resolved` turns epochs into steps once the
    number of optimiser steps per epoch is known.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(20, ge=1)
    warmup_epochs: float = Field(2.0, ge=0)
    steps: int | None = Field(None, ge=1, description="optimiser steps in total; None = epochs x steps/epoch")
    warmup_steps: int | None = Field(None, ge=0)
    lr: float = Field(6e-4, gt=0)
    min_lr: float = Field(6e-5, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = Field(1.0, ge=0, description="0 = no clipping")
    batch_size: int = Field(60, ge=1, description="EEG samples per micro-batch and process")
    grad_accum: int = Field(1, ge=1)
    text_batch_size: int = Field(4, ge=0, description="text windows per micro-batch; 0 = EEG only")
    text_seq_len: int = Field(1024, ge=1)
    seed: int = 0
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"

    @model_validator(mode="after")
    def _check(self) -> "LMTrainConfig":
        if self.min_lr > self.lr:
            raise ValueError("min_lr must be ≤ lr")
        if self.steps is not None and self.warmup_steps is not None and self.warmup_steps > self.steps:
            raise ValueError("warmup_steps must be ≤ steps")
        return self

    def resolved(self, steps_per_epoch: int) -> "LMTrainConfig":
        """A copy with ``steps``/``warmup_steps`` filled in from epochs (fields already set are kept)."""
        spe = max(1, int(steps_per_epoch))
        steps = self.steps if self.steps is not None else self.epochs * spe
        warm = self.warmup_steps if self.warmup_steps is not None else min(steps, round(self.warmup_epochs * spe))
        return self.model_copy(update={"steps": steps, "warmup_steps": warm})


_TRAIN_PRESETS: dict[str, dict] = {
    "tiny": dict(epochs=30, warmup_epochs=1, lr=2e-3, min_lr=2e-4, batch_size=8, text_batch_size=2,
                 text_seq_len=64),
    "B": {}, "L": {}, "XL": {},  # the original's defaults (reference §3.5)
}


def lm_train_preset(name: str, **overrides) -> LMTrainConfig:
    if name not in _TRAIN_PRESETS:
        raise ConfigError(f"unknown LM training preset {name!r}; choose one of {sorted(_TRAIN_PRESETS)}")
    try:
        return LMTrainConfig(**{**_TRAIN_PRESETS[name], **overrides})
    except ValueError as exc:
        raise ConfigError(f"invalid LM training config: {exc}") from exc


def load_lm_configs(name_or_path: str, **train_overrides) -> tuple[LMConfig, LMTrainConfig]:
    """(model, training) configs from a preset name or a YAML file.

    YAML: ``model: {preset: B, <field>: value ...}`` and ``train: {preset: B, <field>: value ...}``;
    unknown fields are errors. ``train_overrides`` whose value is None are ignored.
    """
    overrides = {k: v for k, v in train_overrides.items() if v is not None}
    if name_or_path in PRESETS:
        return lm_preset(name_or_path), lm_train_preset(name_or_path, **overrides)
    model, train = read_model_train_yaml(name_or_path, PRESETS)
    name = model.pop("preset", "B")
    if isinstance(model.get("tokenizer"), str):  # a tokenizer preset name
        model["tokenizer"] = tokenizer_preset(model["tokenizer"])
    elif isinstance(model.get("tokenizer"), dict):
        tok = dict(model["tokenizer"])
        model["tokenizer"] = tokenizer_preset(tok.pop("preset", "base"), **tok)
    cfg = lm_preset(name, **model)
    tcfg = lm_train_preset(train.pop("preset", name), **{**train, **overrides})
    return cfg, tcfg
