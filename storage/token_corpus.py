"""The token-corpus store: discrete NeuroLM codes materialised once, read many times.

Why a store of its own: NeuroLM re-runs the frozen VQ tokenizer inside every
pretraining step (PEERS key finding 1). Materialising the codes once turns 20
epochs of tokenizer forward passes into one, and gives the LLM stage a plain
integer corpus (~1.8 B tokens, ~3.6 GB as uint16) it can stream at disk speed.

Layout (local path or any fsspec URL)::

    ROOT/corpus-root.json                  {"kind", "format_version", "current": VERSION}
    ROOT/.lock                             TokenCorpusStore.lock() while a job writes
    ROOT/versions/VERSION/lineage.json     what the codes were made from (written first)
    ROOT/versions/VERSION/shards/KKKKKK/   zarr v3 group: codes uint16, ch uint8,
                                           time uint8|uint16 (flat, time-major tokens),
                                           offsets int64 [n_samples + 1]
    ROOT/versions/VERSION/commits/KKKKKK.json   commit marker, written LAST, atomically
    ROOT/versions/VERSION/tables/manifest.parquet   CORPUS_MANIFEST (LABELED_MANIFEST for a labeled
                                           corpus: lineage ``kind`` = "labeled"), after all shards
    ROOT/versions/VERSION/corpus.json      {"status": "writing" | "complete", counts}

``VERSION = "c-" + sha256(canonical lineage identity)[:12]``. The identity holds
only what determines the codes (signal-store version + content identity, the
tokenizer checkpoint sha256 and config hash, the dataset/split selection, the
shard size, the inference precision, the format version) and never a URL, so the same inputs always land
in the same version (a rerun resumes instead of duplicating) and any new input
yields a new version next to the old one.

Crash safety: each shard has exactly one writer; its arrays are written, then
the marker. A shard without a marker does not exist for readers and is deleted
and rewritten by the next run. Nothing relies on consolidated zarr metadata.
"""

from __future__ import annotations

import hashlib
import os
import socket
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from neurolm.errors import StoreError
from storage import fs
from storage.corpus_format import FORMAT_VERSION, CorpusLineage, ShardArrays, canonical
from storage.lock import StoreLock
from schemas.io import read_table
from schemas.io import write_table
from schemas.tables import CORPUS_MANIFEST, LABELED_MANIFEST

__all__ = ["FORMAT_VERSION", "CorpusLineage", "CorpusVersion", "ShardArrays", "TokenCorpusStore", "shard_name"]

ROOT_KIND = "neurolm-token-corpus"
ROOT_FILE = "corpus-root.json"
ARRAYS = ("codes", "ch", "time", "offsets")
ROW_COLUMNS = ("recording_id", "window_start", "n_tokens", "split", "dataset")
#: the LABELS row of each sample of a labeled corpus (manifest columns after ROW_COLUMNS), with its type
LABELED_COLUMNS: dict[str, type] = {"length": int, "task": str, "label": int, "label_name": str, "subject": str}
# 64 Ki tokens per chunk (128 KB of codes): a random sample read decodes one or two
# chunks (~1 ms) instead of the whole shard; a whole-shard read stays a handful of
# chunks. Codes (13 bits of entropy in 16) are stored raw: zstd saved ~10 % and cost
# 3x the read time. ch/time are highly repetitive and compress ~50x with zstd.
_CHUNK_ELEMS = 1 << 16


def _utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shard_name(k: int) -> str:
    """Zero-padded so lexical order is numeric order on every filesystem."""
    return f"{int(k):06d}"


def _as_dtypes(arrs: ShardArrays) -> dict[str, np.ndarray]:
    """Narrow dtypes: codes < 65536, channel indices < 256, time uint8 when it fits."""
    codes = np.asarray(arrs.codes)
    ch = np.asarray(arrs.ch)
    tm = np.asarray(arrs.time)
    if codes.size and (codes.min() < 0 or codes.max() > np.iinfo(np.uint16).max):
        raise StoreError("codes must lie in [0, 65535] to be stored as uint16")
    if ch.size and (ch.min() < 0 or ch.max() > 255):
        raise StoreError("channel indices must lie in [0, 255] (embedding has 256 rows)")
    if tm.size and tm.min() < 0:
        raise StoreError("time indices must be non-negative")
    tdtype = np.uint8 if (not tm.size or tm.max() <= 255) else np.uint16
    return {
        "codes": codes.astype(np.uint16, copy=False),
        "ch": ch.astype(np.uint8, copy=False),
        "time": tm.astype(tdtype, copy=False),
        "offsets": np.asarray(arrs.offsets).astype(np.int64, copy=False),
    }


def _sha(arr: np.ndarray) -> str:
    h = hashlib.sha256(str(arr.dtype).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _rows_payload(rows: pd.DataFrame, labeled: bool = False) -> dict[str, list]:
    want = ROW_COLUMNS + (tuple(LABELED_COLUMNS) if labeled else ())
    missing = [c for c in want if c not in rows.columns]
    if missing:
        raise StoreError(f"shard rows lack columns {missing}")
    types = {"recording_id": str, "window_start": int, "n_tokens": int, "split": str, "dataset": str,
             **LABELED_COLUMNS}
    return {c: [types[c](x) for x in rows[c]] for c in want}


class CorpusVersion:
    """One immutable-once-complete version of a corpus: shards, markers, manifest."""

    def __init__(self, root_url: str, version_id: str) -> None:
        self.root_url = fs.normalize_url(root_url)
        self.version_id = version_id
        self.url = fs.join(self.root_url, "versions", version_id)

    # -- paths ----------------------------------------------------------------
    def shard_url(self, k: int) -> str:
        return fs.join(self.url, "shards", shard_name(k))

    def marker_url(self, k: int) -> str:
        return fs.join(self.url, "commits", shard_name(k) + ".json")

    # -- lineage / status -------------------------------------------------------
    def lineage(self) -> dict[str, Any]:
        try:
            return fs.read_json(fs.join(self.url, "lineage.json"))
        except FileNotFoundError:
            raise StoreError(f"corpus version {self.url} has no lineage.json") from None

    @property
    def labeled(self) -> bool:
        """A labeled corpus (one sample per LABELS row; manifest LABELED_MANIFEST)?"""
        url = fs.join(self.url, "lineage.json")
        return fs.exists(url) and fs.read_json(url).get("kind") == "labeled"

    @property
    def manifest_schema(self):
        return LABELED_MANIFEST if self.labeled else CORPUS_MANIFEST

    def ensure_lineage(self, lineage: CorpusLineage) -> None:
        """Write lineage.json once; on resume, refuse if it disagrees (a hash collision or tampering)."""
        if lineage.version_id() != self.version_id:
            raise StoreError(f"lineage hashes to {lineage.version_id()}, not {self.version_id}")
        url = fs.join(self.url, "lineage.json")
        if fs.exists(url):
            have = fs.read_json(url).get("identity")
            if have != lineage.identity():
                raise StoreError(f"corpus version {self.version_id} was made from other inputs: {have}")
            return
        fs.write_json_atomic(url, lineage.to_json())

    def status(self) -> dict[str, Any]:
        try:
            return fs.read_json(fs.join(self.url, "corpus.json"))
        except FileNotFoundError:
            return {"status": "absent" if not fs.exists(self.url) else "writing"}

    def is_complete(self) -> bool:
        return self.status().get("status") == "complete"

    def mark_writing(self, n_shards: int, n_samples: int) -> None:
        if self.is_complete():
            return
        fs.write_json_atomic(fs.join(self.url, "corpus.json"), {
            "status": "writing", "version_id": self.version_id, "planned_shards": int(n_shards),
            "planned_samples": int(n_samples), "format_version": FORMAT_VERSION, "updated": _utcnow()})

    # -- shards -----------------------------------------------------------------
    def is_committed(self, k: int) -> bool:
        return fs.exists(self.marker_url(k))

    def committed_shards(self) -> list[int]:
        return sorted(int(n[:-5]) for n in fs.listdir(fs.join(self.url, "commits")) if n.endswith(".json"))

    def marker(self, k: int) -> dict[str, Any]:
        try:
            return fs.read_json(self.marker_url(k))
        except FileNotFoundError:
            raise StoreError(f"shard {k} of {self.version_id} is not committed") from None

    def write_shard(self, k: int, arrays: ShardArrays, rows: pd.DataFrame,
                    codebook_size: int | None = None) -> dict[str, Any]:
        """Write shard ``k`` (arrays, then marker). The caller must be its only writer.

        Leftovers of an earlier crashed attempt (no marker) are removed first, so
        the new arrays never mix with stale chunks. Returns the marker.
        """
        import zarr

        if self.is_committed(k):
            raise StoreError(f"shard {k} of {self.version_id} is already committed")
        arrays.validate(codebook_size)
        if len(rows) != arrays.n_samples:
            raise StoreError(f"shard {k}: {len(rows)} manifest rows for {arrays.n_samples} samples")
        payload = _rows_payload(rows, labeled=self.labeled)
        lengths = np.diff(arrays.offsets)
        if list(map(int, lengths)) != payload["n_tokens"]:
            raise StoreError(f"shard {k}: manifest n_tokens disagree with offsets")
        data = _as_dtypes(arrays)
        url = self.shard_url(k)
        fs.rm(url)
        group = zarr.open_group(fs.zarr_store(url), mode="w", zarr_format=3,
                                attributes={"shard": int(k), "version_id": self.version_id})
        for name in ARRAYS:
            arr = data[name]
            chunk = max(1, min(len(arr), _CHUNK_ELEMS))
            comp = None if name == "codes" else zarr.codecs.ZstdCodec(level=3)
            group.create_array(name, data=arr, chunks=(chunk,), compressors=comp)
        marker = {
            "shard": int(k), "version_id": self.version_id,
            "n_samples": arrays.n_samples, "n_tokens": arrays.n_tokens,
            "dtypes": {n: str(data[n].dtype) for n in ARRAYS},
            "sha256": {n: _sha(data[n]) for n in ARRAYS},
            "rows_sha256": hashlib.sha256(canonical(payload)).hexdigest(),
            "rows": payload,
            "written": _utcnow(), "host": socket.gethostname(), "pid": os.getpid(),
        }
        fs.write_json_atomic(self.marker_url(k), marker)  # LAST: the shard now exists
        return marker

    def discard_uncommitted(self, shards: Iterable[int]) -> list[int]:
        """Delete shard directories that have no marker (debris of a killed writer)."""
        removed = []
        for k in shards:
            if not self.is_committed(k) and fs.exists(self.shard_url(k)):
                fs.rm(self.shard_url(k))
                removed.append(int(k))
        return removed

    def open_shard(self, k: int) -> dict[str, Any]:
        """The shard's zarr arrays (lazy handles), for partial reads. Only committed shards."""
        import zarr

        if not self.is_committed(k):
            raise StoreError(f"shard {k} of {self.version_id} is not committed")
        group = zarr.open_group(fs.zarr_store(self.shard_url(k), read_only=True), mode="r", zarr_format=3,
                                use_consolidated=False)
        return {n: group[n] for n in ARRAYS}

    def read_shard(self, k: int, verify: bool = False) -> ShardArrays:
        """Whole shard into memory (one read per array). ``verify`` re-checks the sha256s."""
        marker = self.marker(k)
        handles = self.open_shard(k)
        out = {n: np.asarray(handles[n][...]) for n in ARRAYS}
        if verify:
            for n in ARRAYS:
                if _sha(out[n]) != marker["sha256"][n]:
                    raise StoreError(f"shard {k} array {n} does not match its commit marker (corrupt)")
        return ShardArrays(**out)

    # -- finalisation -----------------------------------------------------------
    def build_manifest(self, shards: Iterable[int] | None = None) -> pd.DataFrame:
        """CORPUS_MANIFEST rows from the markers; ``sample`` is the global sample index."""
        ks = sorted(shards) if shards is not None else self.committed_shards()
        frames = []
        for k in ks:
            rows = pd.DataFrame(self.marker(k)["rows"])
            rows.insert(0, "shard", int(k))
            frames.append(rows)
        cols = ["shard", "sample", *ROW_COLUMNS, *(LABELED_COLUMNS if self.labeled else ())]
        ints = {"shard", "sample", "window_start", "n_tokens", "length", "label"}
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype="int64" if c in ints else "object") for c in cols})
        df = pd.concat(frames, ignore_index=True)
        df.insert(1, "sample", np.arange(len(df), dtype=np.int64))
        df = df.astype({c: "int64" for c in cols if c in ints})
        return df[cols]

    def finalize(self, expected_shards: Iterable[int], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """After every planned shard is committed: manifest table, then corpus.json ``complete``."""

        expected = sorted(int(k) for k in expected_shards)
        missing = [k for k in expected if not self.is_committed(k)]
        if missing:
            raise StoreError(f"cannot finalize {self.version_id}: shards {missing[:10]} not committed")
        manifest = self.build_manifest(expected)
        write_table(manifest, self.manifest_schema, fs.join(self.url, "tables", "manifest.parquet"))
        status = {
            "status": "complete", "version_id": self.version_id, "format_version": FORMAT_VERSION,
            "n_shards": len(expected), "n_samples": int(len(manifest)),
            "n_tokens": int(manifest["n_tokens"].sum()) if len(manifest) else 0,
            "content_hash": self.content_hash(expected), "completed": _utcnow(), **dict(extra or {}),
        }
        fs.write_json_atomic(fs.join(self.url, "corpus.json"), status)
        return status

    def manifest(self) -> pd.DataFrame:
        """The validated manifest of a complete version."""

        url = fs.join(self.url, "tables", "manifest.parquet")
        if not fs.exists(url):
            raise StoreError(f"corpus version {self.version_id} has no manifest (not complete?)")
        return read_table(url, self.manifest_schema)

    def content_hash(self, shards: Iterable[int] | None = None) -> str:
        """sha256 over committed shard contents and their manifest rows (no timestamps, hosts, URLs).

        Two runs over the same inputs — interrupted or not — give the same hash.
        """
        ks = sorted(shards) if shards is not None else self.committed_shards()
        h = hashlib.sha256(self.version_id.encode())
        for k in ks:
            m = self.marker(k)
            h.update(canonical({key: m[key] for key in
                                 ("shard", "n_samples", "n_tokens", "dtypes", "sha256", "rows_sha256")}))
        return h.hexdigest()


class TokenCorpusStore:
    """A corpus root: many versions, a pointer to the current complete one."""

    def __init__(self, url: str) -> None:
        self.url = fs.normalize_url(url)

    @classmethod
    def check_location(cls, url: str) -> None:
        """StoreError unless ``url`` is a token corpus, absent, or an empty directory. Creates nothing."""
        url = fs.normalize_url(url)
        if fs.exists(fs.join(url, ROOT_FILE)):
            cls.open(url)
        elif fs.exists(url) and not fs.isdir(url):
            raise StoreError(f"{url} is a file, not a token corpus directory")
        elif [n for n in fs.listdir(url) if not n.startswith(".")]:
            raise StoreError(f"{url} exists, is not empty and is not a token corpus; refusing to write there")

    @classmethod
    def open(cls, url: str, create: bool = False) -> "TokenCorpusStore":
        """Open (or with ``create`` initialise) a root; StoreError for a non-corpus directory."""
        store = cls(url)
        root_file = fs.join(store.url, ROOT_FILE)
        if fs.exists(root_file):
            meta = fs.read_json(root_file)
            if meta.get("kind") != ROOT_KIND:
                raise StoreError(f"{store.url} is not a token corpus (kind={meta.get('kind')!r})")
            if int(meta.get("format_version", 0)) > FORMAT_VERSION:
                raise StoreError(f"{store.url} has corpus format {meta.get('format_version')}, "
                                 f"this neurolm reads ≤ {FORMAT_VERSION}")
            return store
        if not create:
            raise StoreError(f"no token corpus at {store.url}")
        if fs.isdir(store.url) and [n for n in fs.listdir(store.url) if not n.startswith(".")]:
            raise StoreError(f"{store.url} exists, is not empty and is not a token corpus; refusing to write there")
        fs.check_writable(store.url)
        fs.write_json_atomic(root_file, {"kind": ROOT_KIND, "format_version": FORMAT_VERSION, "current": None})
        return store

    def lock(self, owner_label: str = "", **kw: Any) -> StoreLock:
        """The corpus root's lock (``ROOT/.lock``), held by a job writing any version; a context manager.
        ``kw`` go to :class:`storage.lock.StoreLock` (``timeout_s``, ...). The root may not exist yet."""
        return StoreLock(self.url, owner_label, **kw)

    def _root_meta(self) -> dict[str, Any]:
        return fs.read_json(fs.join(self.url, ROOT_FILE))

    def current(self) -> str | None:
        return self._root_meta().get("current")

    def set_current(self, version_id: str) -> None:
        if not self.version(version_id).is_complete():
            raise StoreError(f"version {version_id} is not complete; refusing to make it current")
        meta = self._root_meta()
        meta["current"] = version_id
        fs.write_json_atomic(fs.join(self.url, ROOT_FILE), meta)

    def list_versions(self) -> list[str]:
        return [n for n in fs.listdir(fs.join(self.url, "versions")) if n.startswith("c-")]

    def version(self, version_id: str) -> CorpusVersion:
        return CorpusVersion(self.url, version_id)

    def resolve(self, version_id: str | None = None) -> CorpusVersion:
        """The named version, else the current one; StoreError if neither is complete."""
        vid = version_id or self.current()
        if vid is None:
            raise StoreError(f"token corpus {self.url} has no complete version yet")
        v = self.version(vid)
        if not v.is_complete():
            raise StoreError(f"corpus version {vid} at {self.url} is not complete (status {v.status().get('status')})")
        return v
