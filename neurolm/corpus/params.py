"""Typed, frozen parameters of a tokenization run (``neurolm tokenize``, ``tokenize_flow``).

Why here and not in ``flows/``: the CLI builds and validates them without
importing Prefect, and library users can run :func:`neurolm.corpus.tokenize`
with the same object.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neurolm.training.device import DeviceName
from neurolm.errors import validation_message
from neurolm.errors import ConfigError


def parse_list(value: str | None) -> tuple[str, ...] | None:
    """``"a,b"`` → ("a", "b"); empty/None → None (everything)."""
    if value is None:
        return None
    items = tuple(x.strip() for x in str(value).split(",") if x.strip())
    return items or None


class TokenizeParams(BaseModel):
    """Inputs of one tokenization run. ``workers=0`` tokenizes in the flow process (one device owner)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(description="signal store URL")
    tokenizer: str = Field(description="tokenizer run dir, checkpoint dir or weights file")
    out: str = Field(description="token corpus root URL")
    datasets: tuple[str, ...] | None = Field(None, description="datasets to tokenize (default: all)")
    splits: tuple[str, ...] | None = Field(None, description="splits to tokenize (default: all but heldout)")
    store_version: str | None = Field(None, description="store version (default: the current one)")
    device: DeviceName = Field("cpu", description="cpu or cuda[:N]")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="encoder precision (auto: bf16 on GPU)")
    workers: int | None = Field(None, ge=0, le=256, description="Dask worker processes; None: 2 on CPU, 0 on CUDA")
    shard_size: int = Field(1024, ge=1, le=65536, description="samples per shard (one writer each)")
    batch_size: int = Field(16, ge=1, le=4096, description="samples per encoder batch")
    dask_address: str | None = Field(None, description="an existing Dask scheduler (tcp://host:8786)")
    lock_timeout_s: float = Field(30.0, ge=0, description="seconds to wait for another run's corpus lock")
    labeled: bool = Field(False, description="tokenize the LABELS table's windows (one sample each) instead")
    tasks: tuple[str, ...] | None = Field(None, description="labeled mode: LABELS tasks (default: all)")

    @model_validator(mode="after")
    def _labeled_selection(self) -> "TokenizeParams":
        if self.labeled and (self.datasets or self.splits):
            raise ValueError("--labeled tokenizes every split of the chosen tasks: choose with --tasks, "
                             "not --datasets/--splits")
        if self.tasks and not self.labeled:
            raise ValueError("--tasks selects labeled tasks: add --labeled")
        return self

    @property
    def n_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return 0 if self.device.startswith("cuda") else 2

    @classmethod
    def build(cls, **kw) -> "TokenizeParams":
        """Construct, turning pydantic validation errors into one-line ConfigErrors."""
        try:
            return cls(**kw)
        except ValidationError as exc:
            raise ConfigError(f"invalid tokenize arguments: {validation_message(exc)}") from None
