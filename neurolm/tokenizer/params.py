"""The parameters of a tokenizer training run (the ``train-tokenizer`` stage)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TrainTokenizerParams(BaseModel):
    """Everything a tokenizer training run is parameterised by (JSON-able, shown in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    out: str
    config: str = "tiny"  # preset name or YAML path
    steps: int | None = None
    batch_size: int | None = None
    device: str = "cpu"
    resume: bool = True
    split: str = "train"
    version: str | None = None
    num_workers: int | None = None
    seed: int | None = None
    text_tokens: str | None = None  # nanoGPT-style uint16 token file for the text side
