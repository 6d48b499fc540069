"""Typed, validated parameters of one ingestion run.

Why a frozen pydantic model: the same object is the Prefect flow's parameter
(shown in the UI, stored with the flow run), the CLI's parsed arguments and the
dataset adapters' entry point, so one validation path catches bad arguments
*before* any file is listed or any worker started. Field checks (workers >= 1,
split fractions summing to 1) run at construction; :meth:`IngestParams.check_paths`
adds the filesystem checks (source readable, store location writable), which
need I/O and are therefore explicit. :func:`make_params` does both and turns
pydantic's multi-line errors into one :class:`ConfigError` per problem.
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from neurolm.errors import validation_message
from neurolm.errors import ConfigError
from neurolm.ingest.discover import slug
from neurolm.ingest.limits import GIB, FileLimits, available_cpus, default_memory_bytes
from storage import fs

HeldoutPolicy = Literal["exclude", "ignore"]


def _at_least_one(v: int, info: ValidationInfo) -> int:
    if v < 1:
        raise ValueError(f"{info.field_name} must be >= 1, got {v}")
    return v


def _dask_address(v: str | None) -> str | None:
    if v and "://" not in v:
        raise ValueError(f"dask_address must look like tcp://host:port, got {v!r}")
    return v or None


# Shared by every run-parameter model (ingest, rebuild, dataset ingestion): one check, one message.
Count = Annotated[int, AfterValidator(_at_least_one)]
DaskAddress = Annotated[str | None, AfterValidator(_dask_address)]


class IngestParams(BaseModel):
    """Everything an ingestion run needs; immutable once validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(description="archive root: a local directory or an fsspec URL (memory://, s3://, ...)")
    store: str = Field(description="signal store URL (created when absent)")
    dataset: str | None = Field(default=None, description="dataset name; default: slug of the source folder name")
    moved: bool = Field(
        default=False, description="the archive moved: accept SOURCE as the new root of a dataset this store "
                                   "ingested from another folder (without it, another root under the same dataset "
                                   "name is refused, since its files would overwrite that dataset's recordings)")
    mains_hz: float | None = Field(default=None, description="notch frequency for this dataset; None = store default")
    layout: Literal["auto", "bids", "tuh", "generic"] = Field(
        "auto", description="source layout: auto-detect, BIDS, TUH (subject/session from paths) or a generic tree")
    family: str | None = Field(default=None, description="subject-key family (held-out registry), e.g. 'tuh'")
    tuh_le: Literal["skip", "keep"] = Field(
        default="skip", description="TUH -LE montage files: 'skip' like NeuroLM's pretraining script, or 'keep'")
    workers: Count = Field(default=2, description="local Dask worker processes (ignored with dask_address)")
    batch_size: Count = Field(default=8, description="files per Prefect task")
    dask_address: DaskAddress = Field(default=None, description="existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    seed: int = Field(default=0, description="split seed")
    split_fractions: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="train, val, test fractions of subjects (seeded, stable as data grows)")
    heldout_subjects: tuple[str, ...] = Field(default=(), description="subject keys to register as held-out first")
    heldout_policy: HeldoutPolicy = Field(default="exclude", description="'exclude' held-out subjects from windows")
    crop_end_s: float = Field(default=10.0, description="seconds dropped from each recording's end before windowing")
    lock_timeout_s: float = Field(default=30.0, description="how long to wait for another run holding the store")
    file_timeout_s: float = Field(
        default=600.0, gt=0, description="per-file time limit: a file taking longer is stopped and quarantined")
    file_memory_gb: float | None = Field(
        default=None, gt=0, description="per-file memory budget in GiB; None = min(8, 60% of RAM / workers)")
    max_sfreq_hz: float = Field(
        default=20_000.0, gt=0, description="sampling-rate ceiling: faster recordings are quarantined")
    overlap: Literal["auto", "on", "off"] = Field(
        default="auto", description="write one file while the next is read and filtered (a second thread per "
                                    "worker): 'auto' = on when the machine has two cores per local worker")
    table_flush_s: float = Field(
        default=30.0, description="seconds between incremental table writes (for readers watching a run; the "
                                  "commit markers alone make every committed recording crash-safe)")

    @field_validator("mains_hz")
    @classmethod
    def _mains(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v < 100:
            raise ValueError(f"mains_hz must be in (0, 100) Hz (50 or 60 for power lines), got {v}")
        return v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str | None) -> str | None:
        if v is not None and (not v or slug(v) != v):
            raise ValueError(f"dataset name {v!r} must be a lower-case slug like {slug(v or 'x')!r}")
        return v

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in v) or not math.isclose(sum(v), 1.0, abs_tol=1e-6):
            raise ValueError(f"split fractions (train, val, test) must be >= 0 and sum to 1, got {v} (sum {sum(v):g})")
        return v

    @field_validator("crop_end_s", "lock_timeout_s", "table_flush_s")
    @classmethod
    def _non_negative(cls, v: float, info) -> float:
        if v < 0:
            raise ValueError(f"{info.field_name} must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _distinct(self) -> "IngestParams":
        src, dst = fs.normalize_url(self.source), fs.normalize_url(self.store)
        if src == dst or dst.startswith(src.rstrip("/") + "/"):
            raise ValueError(f"the store {dst} must not be inside the source tree {src}")
        return self

    def file_limits(self):
        """The per-file bounds of this run (:class:`neurolm.ingest.limits.FileLimits`)."""

        memory = int(self.file_memory_gb * GIB) if self.file_memory_gb else default_memory_bytes(self.workers)
        return FileLimits(timeout_s=self.file_timeout_s, memory_bytes=memory, max_sfreq=self.max_sfreq_hz,
                          overlap=self.overlap_writes())

    def overlap_writes(self) -> bool:
        """Whether workers overlap one file's write with the next file's read (``overlap``).

        'auto': on for local workers when the machine has at least two cores per worker (the
        write thread then has a core of its own), off otherwise and on an external cluster,
        whose workers usually fill their machines' cores already (threads would only compete).
        """
        if self.overlap != "auto":
            return self.overlap == "on"
        return not self.dask_address and available_cpus() >= 2 * self.workers

    @property
    def dataset_name(self) -> str:
        """The dataset name, defaulting to the slug of the source folder's name."""

        return self.dataset or slug(fs.normalize_url(self.source).rstrip("/").rsplit("/", 1)[-1])

    def check_paths(self) -> None:
        """Fail with ConfigError unless the source is a readable directory and the store can be written."""

        src = fs.normalize_url(self.source)
        if fs.is_local(src):
            if not os.path.exists(src):
                raise ConfigError(f"source {src} does not exist")
            if not os.path.isdir(src):
                raise ConfigError(f"source {src} is not a directory")
            if not os.access(src, os.R_OK | os.X_OK):
                raise ConfigError(f"source {src} is not readable")
        elif not fs.isdir(src):
            raise ConfigError(f"source {src} does not exist or is not a directory")
        dst = fs.normalize_url(self.store)
        if fs.is_local(dst):
            # The nearest existing ancestor must be writable (the store may not exist yet).
            probe = dst
            while not os.path.exists(probe):
                parent = os.path.dirname(probe)
                if parent == probe:
                    break
                probe = parent
            if os.path.exists(dst) and not os.path.isdir(dst):
                raise ConfigError(f"store {dst} exists and is not a directory")
            if not os.path.isdir(probe):  # a file on the way: no folder can be made under it, even by root
                raise ConfigError(f"store location {dst} is not writable ({probe} is not a directory)")
            if not os.access(probe, os.W_OK | os.X_OK):
                raise ConfigError(f"store location {dst} is not writable ({probe} is read-only)")


def make_params(**kwargs) -> IngestParams:
    """Build and fully check :class:`IngestParams` (fields *and* paths); ConfigError on any problem."""
    try:
        params = IngestParams(**kwargs)
    except ValidationError as exc:
        raise ConfigError(f"invalid ingest arguments: {validation_message(exc)}") from None
    params.check_paths()
    return params
