"""How a signal store encodes a recording: int16 quantization, checksums, the Blosc codec, direct chunk files.

The format itself is described in :mod:`storage.signal_store` (module doc); this module holds the
pieces every writer of it shares (:meth:`storage.signal_store.SignalStore.write_recording` and
:class:`storage.recording_writer.RecordingWriter`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Sequence

import numpy as np

SCALE = 0.001  # model units per int16 step (0.1 µV at the default unit_divisor of 100)
STEP_UV = 0.1  # µV per int16 step, whatever the model unit
INT16_MAX = 32767
MISSING = -32768  # fill value of the arrays: quantize() never produces it, so reading it means "no data here"
CODEC = {"cname": "lz4", "clevel": 9, "shuffle": "bitshuffle"}  # zstd2: 3.5x the compression CPU, 2.3x the decode, for 6 % less (results_storage.md)


def quantize(data: np.ndarray, scale: float = SCALE, out: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """Model-unit float → int16 steps of ``scale`` model units; returns (q, n_clipped, n_nonfinite).

    ``x / scale`` in float32, non-finite → 0, rounded half to even, clipped to ±INT16_MAX;
    ``n_clipped`` counts |x / scale| > INT16_MAX. ``out`` (int16, same shape) receives q.
    One float32 temporary, modified in place: call it on chunks to keep it in cache.
    """
    x = np.divide(np.asarray(data, dtype=np.float32), np.float32(scale), dtype=np.float32)
    n_nonfinite = 0
    if x.size and not np.isfinite(x.min() + x.max()):  # NaN propagates through min/max; inf through the sum
        bad = ~np.isfinite(x)
        n_nonfinite = int(bad.sum())
        x[bad] = 0.0
    n_clipped = 0
    if x.size and (x.max() > INT16_MAX or x.min() < -INT16_MAX):
        n_clipped = int(np.count_nonzero(x > INT16_MAX) + np.count_nonzero(x < -INT16_MAX))
        np.clip(x, -INT16_MAX, INT16_MAX, out=x)
    np.rint(x, out=x)
    q = out if out is not None else np.empty(x.shape, "<i2")
    np.copyto(q, x, casting="unsafe")
    return q, n_clipped, n_nonfinite


def checksum(q: np.ndarray) -> str:
    """sha256 of the int16 array's bytes in C order (hashed from its buffer, no copy)."""
    return "sha256:" + hashlib.sha256(memoryview(np.ascontiguousarray(q, dtype="<i2")).cast("B")).hexdigest()


ROWS_PREFIX = "sha256-rows:"


def rows_digest(row_digests: Sequence[bytes]) -> str:
    return ROWS_PREFIX + hashlib.sha256(b"".join(row_digests)).hexdigest()


def checksum_rows(q: np.ndarray) -> str:
    """``sha256-rows:`` sha256 of the concatenated sha256 digests of each row's int16 bytes.

    The checksum of recordings written block by block (:class:`RecordingWriter`): each row's
    hash is updated as time blocks arrive, which C-order :func:`checksum` cannot be.
    """
    q = np.ascontiguousarray(q, dtype="<i2")
    return rows_digest([hashlib.sha256(memoryview(row).cast("B")).digest() for row in q])


def json_safe(obj: Any) -> Any:
    """``obj`` as plain JSON values (arrays as lists, anything else unknown as its string)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


class ChunkFiles:
    """The chunk files of one new, unsharded array on a local store, encoded exactly as zarr's ``BloscCodec``.

    Why: zarr-python's write path costs as much CPU as the compression itself (asyncio
    round trips, a temporary file and a rename per chunk), and chunks of an uncommitted
    recording need no atomicity (no marker, no reader; a rerun overwrites the array).
    As zarr (``write_empty_chunks=False``), an all-fill chunk is not written; the last
    chunk is padded with the fill value.
    """

    def __init__(self, arr: Any, root: str, n_ch: int, win: int, fill: int):
        import numcodecs
        from packaging.version import Version

        shuffle = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}[CODEC["shuffle"]]
        kw: dict[str, Any] = {"cname": CODEC["cname"], "clevel": CODEC["clevel"], "shuffle": shuffle, "blocksize": 0}
        if Version(numcodecs.__version__) >= Version("0.16.0"):  # as zarr's BloscCodec does (numcodecs#713)
            kw["typesize"] = 2
        self.codec = numcodecs.Blosc(**kw)
        self.arr, self.root = arr, root
        self.fill = fill
        self.pad = np.full((n_ch, win), fill, "<i2")
        self.dirs: set[str] = set()

    def put(self, k: int, block: np.ndarray) -> None:
        if (block == self.fill).all():
            return
        if block.shape != self.pad.shape:
            self.pad[:] = self.fill
            self.pad[:, : block.shape[1]] = block
            block = self.pad
        path = os.path.join(self.root, *self.arr.metadata.encode_chunk_key((0, k)).split("/"))
        parent = os.path.dirname(path)
        if parent not in self.dirs:
            os.makedirs(parent, exist_ok=True)
            self.dirs.add(parent)
        with open(path, "wb") as fh:
            fh.write(self.codec.encode(np.ascontiguousarray(block).view(np.uint8)))
