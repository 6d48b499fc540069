"""The parameters of a tokenizer training run (the ``train-tokenizer`` stage)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainTokenizerParams(BaseModel):
    """Everything a tokenizer training run is parameterised by (JSON-able, shown in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(description="signal store URL to train on")
    out: str = Field(description="run directory for checkpoints, metrics and the report")
    config: str = Field("tiny", description="tokenizer preset (tiny, base) or a YAML config path")
    steps: int | None = Field(None, description="training steps (default: the preset's)")
    batch_size: int | None = Field(None, description="samples per step (default: the preset's)")
    device: str = Field("cpu", description="cpu or cuda[:N]")
    resume: bool = Field(True, description="continue from the run directory's last good checkpoint")
    split: str = Field("train", description="store split whose windows are trained on")
    version: str | None = Field(None, description="store version (default: the current one)")
    num_workers: int | None = Field(None, description="data-loading worker processes (default: the preset's)")
    seed: int | None = Field(None, description="random seed (default: the preset's)")
    text_tokens: str | None = Field(None, description="nanoGPT-style uint16 token file for the text side "
                                                      "(default: uniform ids, recorded in lineage)")
