"""The channel-standardized signal store (Zarr v3), the hand-off from ingestion to training.

Layout and contract: docs/ARCHITECTURE.md, section storage.signal_store.

Encoding (chosen by measurement, bench/results_storage.md): each recording is one
``int16 [n_ch, n_samples]`` array at 0.1 µV per step (= 0.001 model units at
NeuroLM's µV/100; in general 0.1 / unit_divisor, recorded as ``scale``), so
the range is ±3276.7 µV; larger values are clipped to it and counted
(``n_clipped`` in the commit marker). Non-finite values are stored as 0 and
counted (``n_nonfinite``). Int16 at 0.1 µV is far below EEG amplifier noise
(~0.5 µV) and compresses to ~0.93-0.98 MB per channel-hour, against ~2.4 MB for
float32 and 5.8 MB for NeuroLM's float64 sample files.

Chunks are exactly one NeuroLM sample window, ``(n_ch, neurolm.samples.sample_seconds(n_ch)*200)``
(≤ 400 KB uncompressed for any channel count), so :meth:`SignalStore.read_sample`
decodes exactly one chunk. Codec: Blosc lz4 (level 9) with bit shuffle (zstd 2 with byte
shuffle until 2026-12-07: 6 % smaller, 3.5x the compression CPU; arrays keep the codec they
were written with). Sharding
(``SHARD_CHUNKS`` windows per stored object) is supported but off by default: it
measurably slowed random sample reads more than it helped (see the benchmark).

Commit protocol (generations): every write of a recording goes to a *new* array,
``recordings/<recording_id>@<generation>``, never over the published one; once it
is fully written, ``commits/<recording_id>.json`` (shape, n_samples, sha256 of the
int16 data, channel map, and ``array``: the array's name) is replaced atomically,
LAST. So a reader that resolved the array through the marker it read sees exactly
the old recording or exactly the new one, never a half-written one, even while a
changed file is re-ingested. Superseded and unmarked (partial) arrays are removed
later by :meth:`SignalStore.collect_garbage` (at the start of the next ingestion,
after ``GENERATION_GRACE_S``). Arrays are created with fill value ``MISSING``
(-32768, which quantized data never holds, so every chunk is written): a read that
meets it hit an array removed under a long-lived reader, and re-resolves through the
current marker instead of returning zeros. Markers without ``array`` (stores written
before generations) name ``recordings/<recording_id>``. Each recording has its own
writer, so workers in different processes can write different recordings at the
same time; two writers of the *same* recording id are not supported (the ingestion
plan never produces them).

Block writes (:meth:`SignalStore.recording_writer`, for recordings too long to hold whole):
the same generation array and commit protocol, filled in consecutive time blocks
that are whole chunks (one writer per array, each chunk written once); the marker's
checksum is then ``sha256-rows:`` -- sha256 over the per-row sha256 digests
(:func:`checksum_rows`), since C-order bytes cannot be hashed while time blocks
arrive. :meth:`SignalStore.verify_recording` accepts both forms. The form depends on
the path a recording took (a constant size threshold, see
``neurolm.standardize_stream.STREAM_MIN_VALUES``), so the content hash of a store is
still the same on every machine.

Lock: a store object bound to the store lock (:meth:`SignalStore.bind_lock`, with the
lock itself in the holder's process, or its token in a worker) checks that the lock is
still held before every commit and table write, and raises ``LockLostError`` if not.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
import warnings
from typing import Any, Sequence

import numpy as np

from neurolm.errors import ConfigError, StoreError
from neurolm.samples import SFREQ as _SFREQ
from neurolm.samples import sample_seconds
from neurolm.vocab import VOCAB_VERSION
from storage import fs
from storage import versions as V
from storage.lock import StoreLock, check_token
from schemas.io import read_table
from schemas.io import write_table
from schemas.tables import STORE_TABLES
from storage.recording_writer import RecordingWriter
from storage.signal_codec import (  # noqa: F401  (SCALE, MISSING, quantize, checksum_rows: the store's public names)
    CODEC, MISSING, ROWS_PREFIX, SCALE, STEP_UV, ChunkFiles, checksum, checksum_rows, json_safe, quantize,
)

GENERATION_GRACE_S = 3600.0  # superseded arrays stay readable at least this long (collect_garbage)
SFREQ = float(_SFREQ)
NEUROLM_CROP_END_S = 10.0  # NeuroLM drops the last 10 s of every recording before cutting samples
# Measured (bench/results_storage.md): sharding cuts objects ~9x but costs ~35% of
# read_sample throughput in zarr-python 3.1, and reads are the training hot path.
SHARD_CHUNKS = 0  # windows per shard; 0 or 1 = no sharding (one object per sample window)
#: Table columns that say which run wrote a row, not what the store holds (left out of content_hash).
RUN_COLUMNS = frozenset({"run_id"})
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=+-]{0,199}$")


def store_lock(url: str, owner_label: str = "", **kw: Any) -> StoreLock:
    """The one lock of a signal store (``STORE/.lock``, every version): held by whoever writes its
    tables, versions or pointer (ingest, dataset ingest, rebuild, version removal). Use as a context
    manager; ``kw`` go to :class:`storage.lock.StoreLock` (``timeout_s``, ...). The store may not exist yet."""
    return StoreLock(url, owner_label, **kw)


def _check_id(recording_id: str) -> str:
    if not isinstance(recording_id, str) or not _ID_RE.match(recording_id) or ".tmp-" in recording_id:
        raise ConfigError(f"invalid recording_id {recording_id!r}: use letters, digits and . _ : = + - "
                          "(no '/', not starting with a dot, no '.tmp-'), at most 200 characters")
    return recording_id


def _mtime(url: str) -> float | None:
    """Modification time (epoch seconds) of a file, None when absent."""
    try:
        if fs.is_local(url):
            return os.path.getmtime(url)
        f, p = fs.get_fs(url)
        return f.modified(p).timestamp()
    except (OSError, FileNotFoundError, NotImplementedError):
        return None


#: Write chunks of local stores straight to their files (same bytes as zarr; tests compare both paths).
DIRECT_CHUNK_WRITES = True


class SignalStore:
    """One version of a signal store. Create with :meth:`open`, not the constructor."""

    def __init__(self, url: str, version_id: str, version_meta: dict[str, Any]):
        self.url = url
        self.version_id = version_id
        self.version_meta = version_meta
        self.version_url = V.version_url(url, version_id)
        self.vocab_version: str = version_meta.get("vocab_version", VOCAB_VERSION)
        self.config_hash: str = version_meta.get("config_hash", "")
        self._config: Any = None
        self._signals_url = fs.join(self.version_url, "signals.zarr")
        self._zw = None  # writable zarr store, created on first write
        self._zr = None
        self._arrays: dict[str, Any] = {}
        self._markers: dict[str, dict[str, Any]] = {}
        self._lock: StoreLock | None = None
        self._lock_token: str | None = None

    # -- opening ----------------------------------------------------------------
    @classmethod
    def open(cls, url: str, version: str | None = None, create: bool = False, config: Any = None,
             make_current: bool | None = None) -> "SignalStore":
        """Open (or with ``create=True`` create) a store version.

        ``create=True`` creates the version for ``config`` if absent and opens it
        (``config=None``: the current version of an existing store, else a new store
        with the default StandardizeConfig()); it becomes ``current`` when the store has no current
        version or ``make_current=True`` (otherwise call :meth:`switch_version` once the
        new version is fully built, so readers never see a half-built version).
        Without ``create``, opens ``version`` or the current one.
        """
        url = fs.normalize_url(url)
        meta = V.read_store_meta(url)
        if meta is None and not create:
            raise StoreError(f"no signal store at {url} (run neurolm ingest first)")
        if create and config is None and meta and (version or meta.get("current")):
            create = False  # no config asked for: use the existing store's named or current version
        if create:
            fs.check_writable(url)
            cfg = config if config is not None else V.default_config()
            vid = V.version_id_for(cfg)
            if version is not None and version != vid:
                raise ConfigError(f"version {version!r} does not match the given config (its version is {vid})")
            V.create_version(url, cfg)
            current = meta.get("current") if meta else None
            if current is None or make_current:
                V.write_pointer(url, vid)
        else:
            vid = version or meta.get("current")
            if not vid:
                raise StoreError(f"signal store {url} has no current version (run neurolm ingest first)")
        vmeta = V.read_version_meta(url, vid)
        if config is not None and not create and V.config_hash(config) != vmeta.get("config_hash"):
            raise ConfigError(f"store version {vid} was built with config hash {vmeta.get('config_hash')}, "
                              f"not {V.config_hash(config)}")
        return cls(url, vid, vmeta)

    @property
    def config(self) -> Any:
        """The StandardizeConfig this version was built with (a dict if it cannot be rebuilt)."""
        if self._config is None:
            self._config = V.load_config(self.version_meta.get("standardize", {}))
        return self._config

    @property
    def sfreq(self) -> float:
        return float(self.version_meta.get("standardize", {}).get("sfreq", SFREQ))

    @property
    def scale(self) -> float:
        """Model units per int16 step: 0.1 µV / unit_divisor (0.001 for NeuroLM's µV/100)."""
        return STEP_UV / float(self.version_meta.get("standardize", {}).get("unit_divisor", 100.0))

    def _zstore(self, write: bool):
        if write:
            if self._zw is None:
                self._zw = fs.zarr_store(self._signals_url)
            return self._zw
        if self._zr is None:
            self._zr = self._zw if self._zw is not None else fs.zarr_store(self._signals_url, read_only=True)
        return self._zr

    def _marker_url(self, rid: str) -> str:
        return fs.join(self.version_url, "commits", f"{rid}.json")

    # -- lock ownership -------------------------------------------------------------
    def bind_lock(self, lock: StoreLock | str | None) -> "SignalStore":
        """Check ``lock`` (a held StoreLock, or its token in a worker process) before every write."""
        if isinstance(lock, StoreLock):
            self._lock, self._lock_token = lock, lock.token
        else:
            self._lock, self._lock_token = None, lock
        return self

    @property
    def lock_token(self) -> str | None:
        """The token of the lock this object is bound to (pass it to workers), or None."""
        return self._lock_token

    def check_lock(self) -> None:
        """LockLostError when this object is bound to a lock that another run has taken; else nothing."""
        if self._lock is not None:
            self._lock.check()
        elif self._lock_token is not None:
            check_token(fs.join(self.url, ".lock"), self._lock_token)

    # -- writing ------------------------------------------------------------------
    def _new_array(self, rid: str, n_ch: int, n: int, ch_names: tuple[str, ...], ch_indices: tuple[int, ...],
                   safe_attrs: dict) -> tuple[Any, Any, str, int]:
        """A new generation array for ``rid``: (zarr array, direct chunk writer or None, name, window length)."""
        import zarr
        from zarr.codecs import BloscCodec

        name = f"{rid}@g{uuid.uuid4().hex[:12]}"  # a new array for every write: readers of the old one go on
        win = sample_seconds(n_ch) * int(round(self.sfreq))
        n_chunks = max(1, -(-n // win))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = zarr.create_array(
                self._zstore(write=True), name=f"recordings/{name}", shape=(n_ch, n), dtype="int16",
                chunks=(n_ch, win), shards=(n_ch, win * min(n_chunks, SHARD_CHUNKS)) if SHARD_CHUNKS > 1 else None,
                compressors=[BloscCodec(**CODEC)],
                fill_value=MISSING, overwrite=True, dimension_names=("channel", "time"),
                attributes={"ch_names": list(ch_names), "ch_indices": list(ch_indices), "scale": self.scale,
                            "unit": "model units (uV/100)", "sfreq": self.sfreq, "attrs": safe_attrs},
            )
        # on a local store, each chunk is encoded and written right away; elsewhere zarr writes
        direct = ChunkFiles(arr, fs.join(self._signals_url, "recordings", name), n_ch, win, MISSING) \
            if DIRECT_CHUNK_WRITES and fs.is_local(self._signals_url) and SHARD_CHUNKS <= 1 else None
        return arr, direct, name, win

    def _check_recording(self, rid: str, shape: tuple[int, ...], ch_names: tuple[str, ...],
                         ch_indices: tuple[int, ...], rec_sfreq: Any) -> None:
        if len(shape) != 2 or shape[0] != len(ch_names) or len(ch_indices) != len(ch_names) or not ch_names:
            raise ConfigError(f"recording {rid}: data shape {shape} does not match "
                              f"{len(ch_names)} ch_names / {len(ch_indices)} ch_indices")
        if rec_sfreq is not None and abs(float(rec_sfreq) - self.sfreq) > 1e-6:
            raise ConfigError(f"recording {rid} is at {rec_sfreq} Hz; store version {self.version_id} holds {self.sfreq} Hz")

    def _commit(self, rid: str, name: str, shape: tuple[int, int], digest: str, ch_names, ch_indices, rec: Any,
                n_clipped: int, n_nonfinite: int, safe_attrs: dict) -> dict[str, Any]:
        n_ch, n = shape
        marker = {
            "recording_id": rid, "shape": [n_ch, n], "n_samples": n, "n_channels": n_ch, "dtype": "int16",
            "scale": self.scale, "checksum": digest, "ch_names": list(ch_names), "ch_indices": list(ch_indices),
            "sfreq": self.sfreq, "orig_sfreq": float(getattr(rec, "orig_sfreq", float("nan"))),
            "duration_s": float(getattr(rec, "duration_s", n / self.sfreq)),
            "flags": list(getattr(rec, "flags", ()) or ()),
            "channel_flags": json_safe(dict(getattr(rec, "channel_flags", {}) or {})),
            "n_clipped": n_clipped, "n_nonfinite": n_nonfinite, "attrs": safe_attrs,
            "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "array": name,
        }
        self.check_lock()  # the commit: only while this run still holds the store
        fs.write_json_atomic(self._marker_url(rid), marker)
        self._arrays.pop(rid, None)
        self._markers[rid] = marker
        return marker

    def write_recording(self, recording_id: str, rec: Any, attrs: dict | None = None) -> dict[str, Any]:
        """Write a StandardizedRecording's data as a new generation, then switch its commit marker; returns it.

        A committed recording stays readable, unchanged, until the marker switches;
        its superseded array is left for :meth:`collect_garbage`. Long recordings can
        be written block by block instead: :meth:`recording_writer`.
        """
        rid = _check_id(recording_id)
        data = np.asarray(rec.data)
        ch_names = tuple(rec.ch_names)
        ch_indices = tuple(int(i) for i in rec.ch_indices)
        self._check_recording(rid, data.shape, ch_names, ch_indices, getattr(rec, "sfreq", None))
        self.check_lock()
        n_ch, n = data.shape
        safe_attrs = json_safe(attrs or {})
        arr, direct, name, win = self._new_array(rid, n_ch, n, ch_names, ch_indices, safe_attrs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Quantize window by window (cache-sized temporaries), each chunk written as it is done
            q = np.empty((n_ch, n), "<i2")
            n_clipped = n_nonfinite = 0
            for k, s0 in enumerate(range(0, n, win)):
                _, c, f = quantize(data[:, s0:s0 + win], self.scale, out=q[:, s0:s0 + win])
                n_clipped, n_nonfinite = n_clipped + c, n_nonfinite + f
                if direct is not None:
                    direct.put(k, q[:, s0:s0 + win])
            if n and direct is None:
                arr[:, :] = q
        return self._commit(rid, name, (n_ch, n), checksum(q), ch_names, ch_indices, rec, n_clipped, n_nonfinite,
                            safe_attrs)

    def recording_writer(self, recording_id: str, ch_names: Sequence[str], ch_indices: Sequence[int],
                         n_samples: int) -> "RecordingWriter":
        """A block-by-block writer of one new generation of ``recording_id`` (``n_samples`` long).

        Same commit protocol as :meth:`write_recording`: nothing is visible until
        :meth:`RecordingWriter.commit` replaces the marker; an abandoned writer leaves an
        unmarked array for :meth:`collect_garbage`. Its marker's checksum is ``sha256-rows:``
        (see :func:`checksum_rows`), since rows cannot be hashed in C order while time blocks
        arrive.
        """
        return RecordingWriter(self, _check_id(recording_id), tuple(ch_names), tuple(int(i) for i in ch_indices),
                               int(n_samples))

    def delete_recording(self, recording_id: str) -> None:
        """Marker first (the recording disappears for readers at once), then every array of it.

        A reader still holding the old marker then meets ``MISSING`` and gets a KeyError.
        """
        rid = _check_id(recording_id)
        self.check_lock()
        fs.rm(self._marker_url(rid))
        self._arrays.pop(rid, None)
        self._markers.pop(rid, None)
        for entry in fs.listdir(fs.join(self._signals_url, "recordings")):
            if entry == rid or entry.startswith(rid + "@"):
                fs.rm(fs.join(self._signals_url, "recordings", entry))

    def collect_garbage(self, grace_s: float = GENERATION_GRACE_S) -> list[str]:
        """Remove arrays no marker names (superseded generations, partial writes of killed runs).

        An array goes only when nothing has named it for ``grace_s``: a superseded one
        once its recording's current marker is that old, an unmarked one once its own
        files are. Call it with the store lock held (no writer running). Returns the
        removed array names.
        """
        self.check_lock()
        rec_url = fs.join(self._signals_url, "recordings")
        groups: dict[str, list[str]] = {}
        for entry in fs.listdir(rec_url):
            if entry == "zarr.json":  # the group's own metadata
                continue
            groups.setdefault(entry.split("@", 1)[0], []).append(entry)
        committed = set(self.committed_ids())
        removed, now = [], time.time()
        for rid, entries in groups.items():
            if rid in committed:
                if len(entries) == 1:
                    continue  # the one array of a committed recording is the one its marker names
                keep = self._array_name(rid, fs.read_json(self._marker_url(rid)))
                since = _mtime(self._marker_url(rid))
            else:
                keep, since = None, None
            for entry in entries:
                if entry == keep:
                    continue
                age_from = since if since is not None else _mtime(fs.join(rec_url, entry, "zarr.json"))
                if age_from is not None and now - age_from > grace_s:
                    fs.rm(fs.join(rec_url, entry))
                    removed.append(entry)
        return removed

    # -- reading ------------------------------------------------------------------
    def is_committed(self, recording_id: str) -> bool:
        return fs.exists(self._marker_url(_check_id(recording_id)))

    def committed_ids(self) -> list[str]:
        return [n[:-5] for n in fs.listdir(fs.join(self.version_url, "commits")) if n.endswith(".json")]

    def recording_meta(self, recording_id: str) -> dict[str, Any]:
        """The commit marker: ch_names, ch_indices, n_samples, sfreq, attrs, flags, checksum, ..."""
        rid = _check_id(recording_id)
        m = self._markers.get(rid)
        if m is None:
            try:
                m = fs.read_json(self._marker_url(rid))
            except FileNotFoundError:
                raise KeyError(f"recording {rid!r} is not committed in store version {self.version_id}") from None
            self._markers[rid] = m
        return m

    @staticmethod
    def _array_name(rid: str, marker: dict[str, Any]) -> str:
        return str(marker.get("array") or rid)  # markers written before generations name recordings/<rid>

    def _array(self, rid: str):
        """The array the cached marker of ``rid`` names."""
        a = self._arrays.get(rid)
        if a is None:
            import zarr

            name = self._array_name(rid, self.recording_meta(rid))
            a = zarr.open_array(self._zstore(write=False), path=f"recordings/{name}", mode="r")
            self._arrays[rid] = a
        return a

    def _read_q(self, rid: str, start: int, stop: int | None) -> tuple[dict[str, Any], np.ndarray]:
        """(marker, int16 data) read through one marker: the whole read comes from one generation.

        A cached marker whose array was removed since (superseded, then collected) shows
        as ``MISSING`` or a missing array: the marker is re-read from disk and the read
        redone on the array it names now; a recording with no marker left is a KeyError.
        """
        for attempt in range(3):
            m = self.recording_meta(rid)
            n = int(m["n_samples"])
            stop_ = n if stop is None else int(stop)
            if not 0 <= start <= stop_ <= n:
                raise IndexError(f"recording {rid}: range [{start}, {stop_}) outside [0, {n}]")
            try:
                q = self._array(rid)[:, start:stop_] if stop_ > start else np.zeros((int(m["n_channels"]), 0), "<i2")
            except FileNotFoundError:  # zarr: ArrayNotFoundError (the array was removed)
                q = None
            if q is not None and not (m.get("array") and (q == MISSING).any()):
                return m, q
            self._arrays.pop(rid, None)  # stale: resolve again through the marker on disk
            self._markers.pop(rid, None)
        raise StoreError(f"recording {rid} in {self.version_url}: the array its marker names is missing or "
                         "incomplete (corrupt store)")

    def read_signal(self, recording_id: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """float32 [n_ch, stop-start] in model units."""
        m, q = self._read_q(_check_id(recording_id), int(start), stop)
        return q.astype(np.float32) * np.float32(m.get("scale", SCALE))

    def sample_window(self, n_channels: int) -> int:
        """Samples per NeuroLM sample window (= per stored chunk) of a recording with ``n_channels``."""
        return sample_seconds(int(n_channels)) * int(round(self.sfreq))

    def sample_length(self, recording_id: str) -> int:
        """Samples per NeuroLM sample window of this recording (floor(1024/n_ch) s × sfreq)."""
        return sample_seconds(int(self.recording_meta(recording_id)["n_channels"])) * int(round(self.sfreq))

    def sample_count(self, recording_id: str, crop_end_s: float = NEUROLM_CROP_END_S) -> int:
        """Whole sample windows after cropping ``crop_end_s`` from the end; the remainder is dropped (NeuroLM §1.3)."""
        usable = int(self.recording_meta(recording_id)["n_samples"]) - int(round(crop_end_s * self.sfreq))
        return max(0, usable) // self.sample_length(recording_id)

    def read_sample(self, recording_id: str, index: int, crop_end_s: float = NEUROLM_CROP_END_S) -> np.ndarray:
        """Sample window ``index`` (float32 [n_ch, L], model units); exactly one chunk is decoded.

        Window ``i`` starts at ``i * L``; with the default crop these are the rows of
        the WINDOWS table for this recording, in order.
        """
        L, count = self.sample_length(recording_id), self.sample_count(recording_id, crop_end_s)
        if not 0 <= index < count:
            raise IndexError(f"recording {recording_id}: sample {index} outside [0, {count})")
        return self.read_signal(recording_id, index * L, (index + 1) * L)

    def verify_recording(self, recording_id: str) -> bool:
        """Re-read the stored int16 data and compare with the marker's checksum."""
        m, q = self._read_q(_check_id(recording_id), 0, None)
        digest = str(m["checksum"])
        return (checksum_rows(q) if digest.startswith(ROWS_PREFIX) else checksum(q)) == digest

    # -- tables -------------------------------------------------------------------
    def _table(self, name: str):
        if name not in STORE_TABLES:
            raise ConfigError(f"unknown table {name!r}; store tables are {sorted(STORE_TABLES)}")
        return STORE_TABLES[name], fs.join(self.version_url, "tables", f"{name}.parquet")

    def write_table(self, name: str, df):
        """Validate against its schema and write ``tables/<name>.parquet`` atomically."""

        schema, url = self._table(name)
        self.check_lock()
        return write_table(df, schema, url)

    def read_table(self, name: str, missing_ok: bool = True):
        """Read and validate a table; a table never written reads as an empty typed frame."""

        schema, url = self._table(name)
        return read_table(url, schema, missing_ok=missing_ok)

    # -- identity -----------------------------------------------------------------
    def content_hash(self, tables: Sequence[str] | None = None, verify: bool = False) -> str:
        """sha256 over committed signals (checksum, shape, channel map) and table rows, order-independent.

        Write timestamps, free-form attrs and the tables' run bookkeeping
        (``RUN_COLUMNS``: which run wrote a row) are excluded, so the same content
        written in another order or by another run hashes the same. ``verify=True``
        re-reads every array and fails on a checksum mismatch.
        """
        import pandas as pd

        h = hashlib.sha256(b"neurolm-signal-store-content-v1\n")
        items = []
        for rid in self.committed_ids():
            m = self.recording_meta(rid)
            if verify and not self.verify_recording(rid):
                raise StoreError(f"recording {rid} in {self.version_url} is corrupt (checksum mismatch)")
            items.append(json.dumps({k: m.get(k) for k in ("recording_id", "shape", "checksum", "ch_names",
                                                           "ch_indices", "sfreq", "flags")}, sort_keys=True))
        for it in sorted(items):
            h.update(it.encode() + b"\n")
        for name in sorted(tables if tables is not None else STORE_TABLES):
            df = self.read_table(name)
            df = df[sorted(c for c in df.columns if c not in RUN_COLUMNS)]
            rows = np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy(dtype=np.uint64))
            h.update(f"table:{name}:{','.join(df.columns)}:{len(df)}\n".encode() + rows.tobytes())
        return h.hexdigest()

    # -- versions and locking --------------------------------------------------------
    def list_versions(self) -> list[dict[str, Any]]:
        """All versions with id, status, created, config_hash, vocab_version and whether current."""
        current = (V.read_store_meta(self.url) or {}).get("current")
        out = []
        for vid in V.list_version_ids(self.url):
            try:
                m = V.read_version_json(self.url, vid)
            except StoreError:  # corrupt version.json: not listed
                continue
            if m is None:
                continue
            out.append({"version_id": vid, "status": m.get("status"), "created": m.get("created"),
                        "config_hash": m.get("config_hash"), "vocab_version": m.get("vocab_version"),
                        "current": vid == current})
        return out

    def current_version(self) -> str | None:
        return (V.read_store_meta(self.url) or {}).get("current")

    def switch_version(self, vid: str) -> None:
        """Point ``current`` at ``vid`` (one atomic write). This object stays on its own version."""
        V.read_version_meta(self.url, vid)  # must exist and be compatible
        self.check_lock()
        V.write_pointer(self.url, vid)

    def remove_version(self, vid: str) -> None:
        """Delete a version's directory; refuses the current version and the one this object has open."""
        if vid == self.version_id and vid != self.current_version():
            raise StoreError(f"refusing to remove {vid}: this SignalStore has it open")
        self.check_lock()
        V.remove_version(self.url, vid)

    def set_status(self, status: str) -> None:
        """Mark this version ``building`` or ``complete`` (ingestion sets complete at the end of a run)."""
        self.check_lock()
        V.set_version_status(self.url, self.version_id, status)
        self.version_meta["status"] = status

    def lock(self, owner_label: str = "", **kw: Any) -> StoreLock:
        """The store's lock (:func:`store_lock`); use as a context manager."""
        return store_lock(self.url, owner_label, **kw)

    def __repr__(self) -> str:
        return f"SignalStore({self.url!r}, version={self.version_id!r})"
