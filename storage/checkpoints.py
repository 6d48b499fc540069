"""Crash-safe, verifiable training checkpoints (safetensors + JSON, never pickle).

Layout of a checkpoint directory ``DIR`` (any URL storage.fs understands)::

    DIR/ckpt-000000300/model.safetensors   weights (+ metadata, e.g. the model config)
    DIR/ckpt-000000300/state.safetensors   every tensor of the training state (optimizer, RNG ...)
    DIR/ckpt-000000300/state.json          the rest of the state; tensors replaced by {"__tensor__": key}
    DIR/ckpt-000000300/lineage.json        where the run came from (store, config hash, code version)
    DIR/ckpt-000000300/manifest.json       sha256 + size of the four files; written LAST

Why a manifest written last: a run killed with ``kill -9`` mid-save leaves a
directory without a manifest (ignored), and a disk that corrupts a file is
caught by the hash; :func:`load_latest_good` then falls back to the previous
good checkpoint instead of resuming from garbage or crashing.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from neurolm.errors import StoreError
from storage import fs

_NAME = re.compile(r"^ckpt-(\d{9})$")
FILES = ("model.safetensors", "state.safetensors", "state.json", "lineage.json")


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint, fully loaded on CPU."""

    path: str
    step: int
    weights: dict[str, torch.Tensor]
    state: dict[str, Any]
    lineage: dict[str, Any]
    metadata: dict[str, str] = field(default_factory=dict)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON skeleton of ``obj`` with every tensor moved into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError("state dict keys must be str or int")
        return {"__dict__": [[k, _flatten(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__tuple__" if isinstance(obj, tuple) else "__list__": [_flatten(v, tensors) for v in obj]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__list__" in obj:
            return [_unflatten(v, tensors) for v in obj["__list__"]]
    return obj


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` header of an in-memory safetensors file."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8: 8 + n].decode("utf-8")).get("__metadata__", {}) or {}


def list_checkpoints(directory: str) -> list[tuple[int, str]]:
    """(step, url) of every checkpoint directory with a manifest, oldest first."""
    if not fs.isdir(directory):
        return []
    out = []
    for name in fs.listdir(directory):
        m = _NAME.match(name)
        if m and fs.exists(fs.join(directory, name, "manifest.json")):
            out.append((int(m.group(1)), fs.join(directory, name)))
    return sorted(out)


def canonical_safetensors(blob: bytes) -> bytes:
    """safetensors bytes with the header's ``__metadata__`` in sorted key order (same length, same tensors).

    Why: the safetensors writer emits its metadata map in hash order, which changes from process to
    process, so the same weights gave files with different bytes, hence a different sha256: the
    tokenizer's identity, and the version id of every token corpus made with it, changed from one
    identical run to the next (found by the build's crash test).
    """
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    if not meta:
        return blob
    text = json.dumps({"__metadata__": dict(sorted(meta.items())), **header}, separators=(",", ":"),
                      ensure_ascii=False).encode()
    if len(text) > n:  # never: the same content; keep the writer's bytes rather than a broken file
        return blob
    return blob[:8] + text + b" " * (n - len(text)) + blob[8 + n:]


def save_checkpoint(directory: str, weights: dict[str, torch.Tensor], state: dict[str, Any],
                    lineage: dict[str, Any], *, keep_last: int = 3,
                    metadata: dict[str, str] | None = None) -> str:
    """Write a checkpoint for ``state["step"]`` and prune to the newest ``keep_last``; returns its URL."""
    step = int(state["step"])
    path = fs.join(directory, f"ckpt-{step:09d}")
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors)
    blobs = {
        "model.safetensors": canonical_safetensors(st_save({k: v.detach().cpu().contiguous()
                                                            for k, v in weights.items()},
                                                           metadata=dict(metadata or {}))),
        "state.safetensors": st_save(tensors),
        "state.json": json.dumps(skeleton, sort_keys=True).encode(),
        "lineage.json": json.dumps(lineage, indent=1, sort_keys=True, default=str).encode(),
    }
    fs.rm(fs.join(path, "manifest.json"))  # an overwritten checkpoint is invalid until fully rewritten
    for name, data in blobs.items():
        fs.atomic_write_bytes(fs.join(path, name), data)
    manifest = {"step": step, "files": {n: {"sha256": sha256_bytes(d), "size": len(d)} for n, d in blobs.items()}}
    fs.write_json_atomic(fs.join(path, "manifest.json"), manifest)
    for _, old in list_checkpoints(directory)[:-keep_last]:
        fs.rm(old)
    for name in fs.listdir(directory):  # leftovers of killed saves, older than this one
        m = _NAME.match(name)
        if m and int(m.group(1)) < step and not fs.exists(fs.join(directory, name, "manifest.json")):
            fs.rm(fs.join(directory, name))
    return path


def _read_verified(path: str) -> dict[str, bytes]:
    """All files of one checkpoint, each checked against the manifest; StoreError when not."""
    try:
        manifest = fs.read_json(fs.join(path, "manifest.json"))
        blobs = {}
        for name in FILES:
            data = fs.read_bytes(fs.join(path, name))
            expect = manifest["files"][name]
            if len(data) != expect["size"] or sha256_bytes(data) != expect["sha256"]:
                raise StoreError(f"{name} does not match its sha256 in the manifest")
            blobs[name] = data
        return blobs
    except (OSError, KeyError, TypeError, StoreError) as exc:
        raise StoreError(f"checkpoint {path} is corrupt: {exc}") from exc


def _decode(path: str, blobs: dict[str, bytes]) -> Checkpoint:
    try:
        tensors = st_load(blobs["state.safetensors"])
        state = _unflatten(json.loads(blobs["state.json"]), tensors)
        return Checkpoint(path=path, step=int(state["step"]), weights=st_load(blobs["model.safetensors"]),
                          state=state, lineage=json.loads(blobs["lineage.json"]),
                          metadata=safetensors_metadata(blobs["model.safetensors"]))
    except Exception as exc:  # undecodable content behind a matching hash: still not usable
        raise StoreError(f"checkpoint {path} cannot be decoded: {exc}") from exc


def load_checkpoint(path: str) -> Checkpoint:
    """Load and verify one checkpoint directory."""
    return _decode(path, _read_verified(path))


def load_latest_good(directory: str) -> Checkpoint | None:
    """Newest checkpoint that verifies; None when there is none at all.

    Corrupt ones are skipped with a warning. StoreError when checkpoints exist but all are corrupt.
    """
    found = list_checkpoints(directory)
    errors = []
    for _, path in reversed(found):
        try:
            return load_checkpoint(path)
        except StoreError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            errors.append(str(exc))
    if found:
        raise StoreError(f"all {len(found)} checkpoints in {directory} are corrupt: {errors[0]}")
    return None


def _resolve(path: str) -> tuple[str, dict[str, bytes] | None]:
    """(concrete checkpoint, its verified files; None for a weights file). See :func:`resolve`."""
    path = fs.normalize_url(path)
    if not fs.exists(path):
        raise StoreError(f"no tokenizer checkpoint at {path}")
    if not fs.isdir(path):
        return path, None
    if fs.exists(fs.join(path, "manifest.json")):
        return path, _read_verified(path)
    found = list_checkpoints(path)
    errors = []
    for _, ckpt in reversed(found):
        try:
            return ckpt, _read_verified(ckpt)
        except StoreError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=3)
            errors.append(str(exc))
    if found:
        raise StoreError(f"no good checkpoint in {path}: all {len(found)} checkpoints are corrupt ({errors[0]})")
    raise StoreError(f"no good checkpoint in {path}: it holds no checkpoint")


def resolve(path: str) -> tuple[str, str]:
    """(concrete checkpoint, sha256 of its weights): the one way a model path is resolved.

    ``path`` may be a weights file (``.safetensors`` or a published ``.pt``: itself,
    identified by its bytes), one checkpoint directory (verified against its
    manifest), or a run directory (its newest checkpoint that verifies; corrupt
    ones are skipped with a warning). Resolving a run directory to one checkpoint
    lets every consumer load exactly the weights a lineage names even while
    training goes on. StoreError when nothing usable is there.
    """
    ckpt, blobs = _resolve(path)
    return ckpt, sha256_bytes(fs.read_bytes(ckpt) if blobs is None else blobs["model.safetensors"])


def load(path: str) -> Checkpoint:
    """The checkpoint :func:`resolve` names for a checkpoint or run directory, loaded (files read once)."""
    ckpt, blobs = _resolve(path)
    if blobs is None:
        raise StoreError(f"{ckpt} is a weights file, not a checkpoint directory")
    return _decode(ckpt, blobs)


def checkpoint_sha256(path: str) -> str:
    """Identity of a tokenizer: sha256 of its weights file (``path`` as in :func:`resolve`)."""
    return resolve(path)[1]
