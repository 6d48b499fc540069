"""Value types of the token-corpus on-disk format: format version, what a version is made from, what a shard holds.

Why separate from ``storage.token_corpus``: these are plain, dependency-free
values (no zarr, no fsspec) shared by the store, the tokenization job and the
reader; keeping them here keeps the store module about IO only. They belong to
``storage/`` (which owns every on-disk layout); ``neurolm.corpus`` imports them
through ``storage.token_corpus``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from neurolm.errors import StoreError

FORMAT_VERSION = 1


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces): what version ids and content hashes are taken over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


@dataclass(frozen=True)
class CorpusLineage:
    """What a corpus version is made from. ``identity()`` decides the version id.

    ``info`` carries human-readable provenance (URLs, paths, codebook size,
    creation time) that must NOT change the version: the same store copied to
    another bucket is the same input.

    ``kind``: ``"pretrain"`` (store windows cut into NeuroLM samples) or
    ``"labeled"`` (one sample per LABELS row of ``tasks``). A pretraining
    identity is unchanged from before kinds existed (same version ids); a
    labeled one adds ``kind`` and ``tasks``, so another task selection is
    another version.
    """

    store_version: str
    store_content: str | None
    vocab_version: str
    tokenizer_sha256: str
    tokenizer_config_hash: str
    datasets: tuple[str, ...] | None
    splits: tuple[str, ...] | None
    shard_size: int
    precision: str = "fp32"  # bf16 autocast may flip near-tie codes: part of what the codes are
    format_version: int = FORMAT_VERSION
    info: Mapping[str, Any] = field(default_factory=dict, compare=False)
    kind: str = "pretrain"
    tasks: tuple[str, ...] | None = None

    def identity(self) -> dict[str, Any]:
        ident = {
            "store_version": self.store_version,
            "store_content": self.store_content,
            "vocab_version": self.vocab_version,
            "tokenizer_sha256": self.tokenizer_sha256,
            "tokenizer_config_hash": self.tokenizer_config_hash,
            "datasets": sorted(self.datasets) if self.datasets else None,
            "splits": sorted(self.splits) if self.splits else None,
            "shard_size": int(self.shard_size),
            "precision": self.precision,
            "format_version": int(self.format_version),
        }
        if self.kind != "pretrain":
            ident.update(kind=self.kind, tasks=sorted(self.tasks) if self.tasks else None)
        return ident

    def version_id(self) -> str:
        return "c-" + hashlib.sha256(canonical(self.identity())).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        return {"version_id": self.version_id(), "kind": self.kind, "identity": self.identity(),
                "info": dict(self.info)}


@dataclass(frozen=True)
class ShardArrays:
    """One shard in memory. ``offsets[i]:offsets[i+1]`` are sample i's tokens."""

    codes: np.ndarray
    ch: np.ndarray
    time: np.ndarray
    offsets: np.ndarray

    @property
    def n_samples(self) -> int:
        return int(len(self.offsets) - 1)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def validate(self, codebook_size: int | None = None) -> None:
        """Structural checks done before a shard is committed (never commit garbage)."""
        off = self.offsets
        if off.ndim != 1 or len(off) < 1 or off[0] != 0 or np.any(np.diff(off) < 0):
            raise StoreError("shard offsets must start at 0 and be non-decreasing")
        n = int(off[-1])
        for name in ("codes", "ch", "time"):
            arr = getattr(self, name)
            if arr.ndim != 1 or len(arr) != n:
                raise StoreError(f"shard array {name} has shape {arr.shape}, expected ({n},)")
        if codebook_size is not None and n and int(self.codes.max()) >= codebook_size:
            raise StoreError(f"code {int(self.codes.max())} outside codebook of size {codebook_size}")
