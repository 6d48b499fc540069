"""The one batch worker every ingestion path uses (generic archives and dataset adapters).

``process_batch`` takes small :class:`SourceItem`s, and for each: stats and
hashes the file, reads the header, selects the vocabulary channels, reads the
signal, standardizes it and writes + commits it to the signal store. It
returns small dict rows (catalog and recordings rows), never arrays, because
whatever a Prefect/Dask task returns is kept by the orchestrator (prefect#12668).

Long recordings (more than ``STREAM_MIN_VALUES`` picked values, in continuous
single-rate EDF/BDF files) are not read whole: the samples are read by range,
standardized in time blocks (:mod:`neurolm.standardize_stream`) and each block is
written to the store as it is produced (:meth:`SignalStore.recording_writer`), so a
worker's memory does not grow with the recording; the commit marker still comes last.
A recording that turns out not to stream (non-finite samples, an upsampled rate) is
read whole after all.

Failure policy (why a batch never crashes): a source-file problem is a
``BadInputError`` and becomes a ``quarantined`` catalog row with its one-line
reason. Any exception raised while *reading* the file (header, samples, hash)
is a file problem too: :func:`neurolm.errors.describe` turns its type into
words (``OverflowError`` -> "a size or count in the file is too large to be
real: ..."). Any other exception is our bug, quarantined as ``internal error
(...)`` with the traceback logged, so one odd file cannot cost the other files
of the batch or the run. Only store-level failures (the store cannot be opened
or written at all) propagate: retrying those per file would be pointless.

Bounds (:mod:`neurolm.ingest.limits`): only regular files are read; header
sizes are checked against the per-file memory budget before any sample is
read; rates above ``max_sfreq`` are refused; and the batch runs in a forked
child, each file under a time limit and an address-space cap, so a file that
hangs or blows up its reader is quarantined with that reason instead of
stopping the run (a fresh child goes on with the files after it).

Idempotence (why a rerun after ``kill -9`` redoes nothing committed): the
commit marker's attrs hold the source hash (of every file the recording read,
whose sizes and mtimes its catalog row keeps: see :mod:`neurolm.ingest.catalog`),
the ingest key (store config hash +
per-item notch/crop/channels), the item's catalog and recordings rows, and its
per-item settings (notch, end crop, channel list, subject key, layout extras) so
a rebuild can re-create the item exactly. An
item already committed with the same hash and key is skipped and its rows are
returned from the marker; one committed with another hash/key is rewritten.

Threads: each worker process computes with one BLAS/OpenMP thread (threadpoolctl
limit around the batch, plus the env of :mod:`flows.runtime`); parallelism
comes from processes, and oversubscribing 2 cores with n BLAS threads per
process only adds contention.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import stat as stat_mod
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator

from neurolm.errors import BadInputError, StoreError
from neurolm.ingest.catalog import INTERNAL_ERROR, encode_parts, part_names, source_hash, stat_change, stat_parts
from neurolm.ingest.items import SourceItem
from neurolm.ingest.limits import FileLimits, Staged, check_bounds, gib, map_bounded, not_regular, reading
from storage import fs
from neurolm.ingest.discover import info_mtime
from neurolm.ingest.layouts import le_montage_reason
from neurolm.positions import map_positions
from neurolm.readers import read_header
from neurolm.readers import read_recording
from neurolm.readers.companions import check_companions, check_files
from neurolm.readers.parts import declared_parts
from neurolm.readers.blocks import open_blocks
from neurolm.readers.detect import EXTENSIONS
from neurolm.readers.mne_io import preload_readers
from neurolm.standardize import standardize, warm_filters
from neurolm.standardize_stream import NeedsWholeFile, StreamStandardizer, should_stream
from neurolm.threads import process_thread
from neurolm.vocab import select_channels
from storage.signal_store import SignalStore

log = logging.getLogger(__name__)

ROW_STATUSES = ("ingested", "skipped", "quarantined")


#: Revision of the channel-selection rules (units, BioSemi letters, digitized positions): a change
#: re-ingests committed recordings, whose stored channels would otherwise follow the old rules.
SELECTION_REVISION = 2


def ingest_key(config_hash: str, item: SourceItem) -> str:
    """What, besides the file bytes, decides the stored signal of one item."""
    payload = {"config": config_hash, "selection": SELECTION_REVISION, "notch": item.notch_hz,
               "crop": item.crop_end_s,
               "channels": list(item.channels) if item.channels is not None else None}
    cnt_format = dict(item.extra).get("cnt_format", "auto")
    if cnt_format != "auto":  # a forced CNT sample width (SEED) decides the samples; keys of others unchanged
        payload["cnt_format"] = cnt_format
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _thread_limit() -> Iterator[None]:
    """One BLAS/OpenMP thread (and one torch thread, if torch is loaded) for the duration of a batch."""
    import sys

    torch = sys.modules.get("torch")
    prev = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - sklearn brings it
            yield
            return
        with threadpool_limits(limits=1):
            yield
    finally:
        if torch is not None and prev:
            torch.set_num_threads(prev)


@contextlib.contextmanager
def localized(path: str) -> Iterator[str]:
    """A local path for ``path``: itself, or a temporary copy of a remote file (and its sidecars)."""
    if fs.is_local(path):
        yield fs.normalize_url(path)
        return
    f, p = fs.get_fs(path)
    tmp = tempfile.mkdtemp(prefix="neurolm-src-")
    try:
        parent, name = p.rsplit("/", 1)
        stem = name.rsplit(".", 1)[0]
        for sib in f.ls(parent, detail=False):
            sib_name = sib.rstrip("/").rsplit("/", 1)[-1]
            if sib_name == name or sib_name.rsplit(".", 1)[0] == stem:  # BrainVision/EEGLAB sidecars
                f.get(sib, os.path.join(tmp, sib_name))
        yield os.path.join(tmp, name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _stat(path: str) -> tuple[int, float]:
    if fs.is_local(path):
        st = os.stat(fs.normalize_url(path))
        what = not_regular(st.st_mode)
        if what is not None:  # a FIFO would block open() forever, /dev/zero never ends: only files are read
            raise BadInputError(f"not a regular file: the path is {what}; only regular files are read")
        return int(st.st_size), float(st.st_mtime)

    f, p = fs.get_fs(path)
    info = f.info(p)
    return int(info.get("size") or 0), info_mtime(info)


@dataclasses.dataclass
class _Source:
    """What one item reads: the entry and its parts (names relative to its folder), hashed at most once."""

    item: SourceItem
    names: list[str]
    known_hash: str | None = None  # over these same names (by the catalog diff, or computed here once)
    _stats: str | None = None

    def set_names(self, names) -> None:
        names = _own_parts(self.item, names)
        if names != self.names:
            self.names, self.known_hash, self._stats = names, None, None

    def hash(self) -> str:
        if self.known_hash is None:
            self._stats = encode_parts(stat_parts(self.item.path, self.names))  # stats taken before hashing
            try:
                self.known_hash = source_hash(self.item.path, self.names)
            except OSError as exc:
                raise BadInputError(f"cannot read source file: {exc.strerror or exc}") from None
        return self.known_hash

    def parts(self) -> str:
        """The catalog's ``parts`` cell: each part's size and mtime (as of hashing)."""
        if self._stats is None:
            self._stats = encode_parts(stat_parts(self.item.path, self.names))
        return self._stats


def _own_parts(item: SourceItem, names) -> list[str]:
    """The part names that stay inside the source root (others are refused by the companion checks, never read)."""
    out = set()
    for name in names:
        name = str(name).replace(os.sep, "/")
        if fs.is_local(item.path):
            real = os.path.realpath(os.path.join(os.path.dirname(fs.normalize_url(item.path)), name))
            root = os.path.realpath(item.root or os.path.dirname(fs.normalize_url(item.path)))
            if real == root or not real.startswith(root.rstrip(os.sep) + os.sep):
                continue
        elif name.startswith("/") or ".." in name.split("/"):
            continue
        out.add(name)
    return sorted(out)


def _header_parts(local: str, header) -> list[str]:
    """Names (relative to ``local``'s folder) of the files the reader opens besides ``local``."""
    base, own = os.path.dirname(os.path.abspath(local)), os.path.realpath(local)
    return [os.path.relpath(os.path.abspath(f), base).replace(os.sep, "/")
            for f in header.files if os.path.realpath(f) != own]


def _catalog_row(item: SourceItem, size: int, mtime: float, chash: str, fmt: str | None, status: str,
                 reason: str | None, run_id: str, parts: str | None = None) -> dict:
    return {"path": item.path, "format": fmt, "size_bytes": int(size), "mtime": float(mtime),
            "content_hash": chash, "dataset": item.dataset, "subject": item.subject, "session": item.session,
            "status": status, "reason": reason, "recording_id": item.recording_id, "run_id": run_id,
            "parts": parts}


def _select(item: SourceItem, header):
    """Channels to keep, from the header: labels, declared units and digitized positions.

    Returns (selection over the header's channels, position mapping report).
    """
    import warnings


    raw_names = header.ch_names
    mapping = map_positions(raw_names, header.ch_locs) if any(header.ch_locs) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicates are resolved deterministically and recorded in `dropped`
        sel = select_channels(raw_names, item.channels, reorder=item.channels is not None,
                              units=header.ch_units or None, by_position=mapping.names if mapping else None)
    if mapping is not None and mapping.unmapped:
        sel = dataclasses.replace(sel, dropped=tuple((r, mapping.unmapped.get(r, why)) for r, why in sel.dropped))
    if sel.n_channels == 0:
        shown = ", ".join(raw_names[:6]) + (" ..." if len(raw_names) > 6 else "")
        reasons = sorted({why for _, why in sel.dropped})
        hint = f"; dropped as: {'; '.join(reasons[:3])}" if reasons else ""
        raise BadInputError(f"no EEG channel maps to the channel vocabulary (labels: {shown or 'none'}){hint}"[:500])
    return sel, (mapping.report() if mapping is not None else [])


def _streamer(item: SourceItem, store, header, sel, picks: list[str], local: str,
              limits: FileLimits) -> StreamStandardizer | None:
    """A block-streamed standardizer for a long recording, or None for the whole-file path.

    Streams when the recording holds more than ``STREAM_MIN_VALUES`` values, the store's
    method is the FFT pass and the file can be read by sample range
    (:func:`neurolm.readers.blocks.open_blocks`); see :mod:`neurolm.standardize_stream`.
    """
    cfg = store.config
    if getattr(cfg, "method", "fft") != "fft" or not should_stream(len(picks), header.n_samples):
        return None
    with reading(limits):
        source = open_blocks(local, picks)
        if source is None:
            return None
        rate = source.sfreq
        if rate > limits.max_sfreq:
            return None  # check_bounds refuses it with its reason
        sel = dataclasses.replace(sel, positions=tuple(range(len(picks))))
        try:
            return StreamStandardizer(source, sel, cfg, notch_hz=item.notch_hz, crop_end_s=item.crop_end_s,
                                      align=store.sample_window(len(picks)))
        except NeedsWholeFile:
            return None


def _checked_header(item: SourceItem, local: str, limits: FileLimits):
    """The header of ``local``, every file it opens checked first (a regular file under the root, its own)."""

    with reading(limits):
        root = item.root if fs.is_local(item.path) else ""
        check_companions(local, root)
        header = read_header(local, dict(item.extra).get("cnt_format", "auto"))
        check_files(header.files, local, root)
    return header


def _ingest_steps(item: SourceItem, store, run_id: str, src: _Source, size: int, mtime: float,
                  limits: FileLimits | None = None, known_hash: str | None = None):
    """One item's ingestion as a generator: it pauses once, after the samples are read (before they are
    standardized), and returns the row (skipped, streamed) or the :class:`_Write` that stands before it."""
    limits = limits or FileLimits()
    key = ingest_key(store.config_hash, item)
    if store.is_committed(item.recording_id):
        attrs = store.recording_meta(item.recording_id).get("attrs") or {}
        row = attrs.get("catalog_row") or {}
        if attrs.get("ingest_key") == key and attrs.get("source_hash") and row:
            # every file it read unchanged: by stat, or (only mtimes moved) by the hash of all of them
            committed = _Source(item, _own_parts(item, part_names(row, item.path) or []), known_hash)
            change = stat_change(row, item.path, size, mtime)
            if change is None or (change == "mtime" and committed.hash() == attrs["source_hash"]):
                cat = {**row, "path": item.path, "mtime": float(mtime), "parts": committed.parts()}
                return {"recording_id": item.recording_id, "status": "skipped", "reason": None,
                        "catalog_row": cat, "recording_row": attrs["recording_row"],
                        "duration_s": float(attrs["recording_row"]["duration_s"])}
            if committed.names == src.names:
                src.known_hash = committed.known_hash
    fmt = None
    cnt_format = dict(item.extra).get("cnt_format", "auto")  # SEED: int32, as the reference reads it
    with localized(item.path) as local:
        header = _checked_header(item, local, limits)
        src.set_names([*src.names, *_header_parts(local, header)])
        le = le_montage_reason(dict(item.extra), header.ch_names)  # TUH -LE files: skipped like the reference
        if le is not None:
            raise BadInputError(le)
        fmt = header.format
        sel, position_mapping = _select(item, header)
        picks = [header.ch_names[p] for p in sel.positions]
        streamer = _streamer(item, store, header, sel, picks, local, limits)
        check_bounds(header, sel.positions, limits, streamed=streamer is not None)
        # started before the samples are read (its stats are taken first: a later edit never hides behind this
        # hash), computed on a background thread while they are read and standardized (hashlib releases the GIL)
        hashing = process_thread("neurolm-hash").submit(src.hash)
        try:
            header_positions = sel.positions
            # the rows read are the picks, in order; `dropped` stays the header-level audit
            sel = dataclasses.replace(sel, positions=tuple(range(len(picks))))
            if streamer is not None:
                try:
                    with reading(limits):
                        streamer.prepare()  # the statistics pass: a file problem here is the file's
                except NeedsWholeFile:
                    streamer = None
                    check_bounds(header, header_positions, limits)
            if streamer is not None:  # long recording: standardized and written block by block
                writer = store.recording_writer(item.recording_id, sel.names, sel.indices, streamer.n_keep)
                for block in streamer.blocks():
                    writer.write(block)
                rec = streamer.info()
            else:
                with reading(limits):
                    raw = read_recording(local, picks=picks, cnt_format=cnt_format)
                yield  # read: the caller may hand the rest (standardization) to another thread
                rec = standardize(raw, sel, store.config, notch_hz=item.notch_hz, crop_end_s=item.crop_end_s)
                del raw
        except Exception as exc:
            raise _hash_error_first(hashing, exc) from None
        chash = hashing.result()
    cat = _catalog_row(item, size, mtime, chash, fmt, "ingested", None, run_id, src.parts())
    row = {
        "recording_id": item.recording_id, "dataset": item.dataset, "subject": item.subject,
        "session": item.session, "subject_key": item.subject_key or f"{item.dataset}:{item.subject}",
        "source_path": item.path, "ch_names": ",".join(rec.ch_names), "n_channels": len(rec.ch_names),
        "duration_s": float(rec.duration_s), "orig_sfreq": float(rec.orig_sfreq),
        "n_samples": int(rec.n_samples if streamer is not None else rec.data.shape[1]), "flags": ",".join(rec.flags),
    }
    attrs = {"source_hash": chash, "ingest_key": key, "catalog_row": cat, "recording_row": row,
             "notch_hz": item.notch_hz, "extra": dict(item.extra),
             # the rest of the item's settings, so a rebuild re-ingests it exactly as here
             "crop_end_s": float(item.crop_end_s),
             "channels": list(item.channels) if item.channels is not None else None,
             "subject_key": row["subject_key"],
             "dropped_channels": [list(d) for d in sel.dropped],
             "position_mapping": position_mapping}
    out = {"recording_id": item.recording_id, "status": "ingested", "reason": None, "catalog_row": cat,
           "recording_row": row, "duration_s": float(rec.duration_s), "format": fmt}
    if streamer is not None:
        writer.commit(rec, attrs)
        return out
    return _Write(rec, attrs, out)


@dataclasses.dataclass
class _Write:
    """A standardized recording still to be written and committed (by :func:`finish_item`), and its row."""

    rec: object
    attrs: dict
    row: dict


@dataclasses.dataclass
class Prepared:
    """One item between its stages (:func:`read_item`, :func:`prepare_item`, :func:`finish_item`)."""

    item: SourceItem
    store: SignalStore
    run_id: str
    limits: FileLimits
    size: int
    mtime: float
    src: _Source | None
    t0: float
    started: float
    out: dict | None = None
    write: _Write | None = None
    steps: object = None  # the paused _ingest_steps generator, between read_item and prepare_item

    def settle(self, done) -> None:
        """Keep what a step gave: nothing yet (None), the write that stands before the row, or the row."""
        if isinstance(done, _Write):
            self.write = done
        elif done is not None:
            self.out = done


def _hash_error_first(hashing, exc: Exception) -> Exception:
    """The exception to quarantine with when reading or standardizing failed while the hash ran beside it.

    Waits for the hash, so the quarantine row always carries it (its value must not depend on which
    thread finished first: a rerun compares rows), and prefers the hash's own failure, which came first
    when the hash ran before the read.
    """
    err = hashing.exception()
    return err if isinstance(err, Exception) else exc


def _quarantined(item: SourceItem, size: int, mtime: float, chash: str, fmt: str | None, reason: str,
                 run_id: str, parts: str | None = None) -> dict:
    return {"recording_id": item.recording_id, "status": "quarantined", "reason": reason,
            "catalog_row": _catalog_row(item, size, mtime, chash, fmt, "quarantined", reason, run_id, parts),
            "recording_row": None, "duration_s": 0.0}


def _quarantined_src(item: SourceItem, size: int, mtime: float, src: _Source | None, fmt: str | None, reason: str,
                     run_id: str) -> dict:
    """:func:`_quarantined` with the part stats of an item whose entry is a regular file (``src``; stat only,
    nothing hashed), so a part that appears or changes later makes the next run retry it."""
    parts = None
    if src is not None:
        try:
            parts = src.parts()
        except OSError:
            pass
    return _quarantined(item, size, mtime, (src.known_hash or "") if src else "", fmt, reason, run_id, parts)


def _guarded(p: Prepared, work) -> dict:
    """``work()``'s row, or the quarantine row its failure deserves (see the module docstring's failure policy)."""
    item, limits = p.item, p.limits
    try:
        return work()
    except BadInputError as exc:
        return _quarantined_src(item, p.size, p.mtime, p.src, None, exc.reason, p.run_id)
    except MemoryError:  # standardizing or writing a recording the header checks let through
        reason = f"the file needs more memory than the per-file budget of {gib(limits.memory)}: MemoryError"
        return _quarantined_src(item, p.size, p.mtime, p.src, None, reason, p.run_id)
    except StoreError:
        raise
    except Exception as exc:  # a bug of ours: quarantine, log the traceback, keep the batch going
        reason = " ".join(f"{INTERNAL_ERROR} (a neurolm bug, not a problem of the file; retried on the next run): "
                          f"{type(exc).__name__}: {exc}".split())[:500]
        log.error("internal error ingesting %s:\n%s", item.path, traceback.format_exc())
        return _quarantined_src(item, p.size, p.mtime, p.src, None, reason, p.run_id)


def read_item(item: SourceItem, store, run_id: str = "", known_hash: str | None = None,
              limits: FileLimits | None = None) -> Prepared:
    """One item up to its samples in memory: stat, hash (started), header, channels, samples.

    Everything that reads the source file happens here or in :func:`prepare_item` (the part the
    per-file bounds are for); :func:`finish_item` writes and commits. The three overlap across
    items in a batch's child (:class:`neurolm.ingest.limits.Staged`).
    """
    p = Prepared(item, store, run_id, limits or FileLimits(), 0, 0.0, None, time.perf_counter(), time.time())

    def work():
        try:
            p.size, p.mtime = _stat(item.path)
        except OSError as exc:
            raise BadInputError(f"cannot stat source file: {exc.strerror or exc}") from None
        p.src = _Source(item, [])
        p.src.set_names(declared_parts(item.path))
        p.steps = _ingest_steps(item, store, run_id, p.src, p.size, p.mtime, p.limits, known_hash)
        return _advance(p.steps)

    p.settle(_guarded(p, work))
    return p


def prepare_item(p: Prepared) -> Prepared:
    """An item from :func:`read_item`, standardized (unless reading already gave its row)."""
    if p.steps is not None and p.out is None and p.write is None:
        steps = p.steps
        p.settle(_guarded(p, lambda: _advance(steps)))
    p.steps = None
    return p


def _advance(steps):
    """Run a generator of :func:`_ingest_steps` to its next pause: None, or what it returned when done."""
    try:
        next(steps)
    except StopIteration as stop:
        return stop.value
    return None


def finish_item(p: Prepared) -> dict:
    """The row of a prepared item, after writing and committing its recording when it has one."""
    if p.write is not None:
        w, p.write = p.write, None

        def work() -> dict:
            p.store.write_recording(p.item.recording_id, w.rec, w.attrs)
            return w.row

        p.out = _guarded(p, work)
        del w
    out = p.out
    out["seconds"] = time.perf_counter() - p.t0
    out["t_start"], out["t_end"] = p.started, time.time()  # epoch: lets a caller measure worker utilisation
    out["size_bytes"] = int(p.size)
    return out


def process_item(item: SourceItem, store, run_id: str = "", known_hash: str | None = None,
                 limits: FileLimits | None = None) -> dict:
    """Ingest one item into an open store, in this process; always returns a row dict (see :func:`process_batch`)."""
    return finish_item(prepare_item(read_item(item, store, run_id, known_hash, limits)))


def _lstat_size(path: str) -> tuple[int, float]:
    """(size, mtime) for a quarantine row, without opening the file; zeros when unknown."""
    try:
        if fs.is_local(path):
            st = os.stat(fs.normalize_url(path))
            return (int(st.st_size) if stat_mod.S_ISREG(st.st_mode) else 0), float(st.st_mtime)
    except OSError:
        pass
    return 0, 0.0


def process_batch(items: Iterable[SourceItem], store_url: str, version_id: str, *, run_id: str = "",
                  known_hashes: dict[str, str] | None = None, limits: FileLimits | None = None,
                  lock_token: str | None = None) -> list[dict]:
    """Ingest a batch of items into store version ``version_id``; one small row dict per item.

    Each row: ``recording_id``, ``status`` (``ingested`` | ``skipped`` (already
    committed, same source and settings) | ``quarantined``), ``reason``,
    ``catalog_row`` (a CATALOG row), ``recording_row`` (a RECORDINGS row without
    ``split``, None when quarantined), ``duration_s``, ``seconds`` (wall time),
    ``size_bytes``, ``t_start``/``t_end`` (epoch seconds). Never raises for a file problem.
    Each item runs under ``limits`` (default :class:`FileLimits`): see :mod:`neurolm.ingest.limits`.
    ``known_hashes``: source hashes the catalog diff already computed for committed recordings, over the parts
    their commit markers record (:attr:`CatalogDiff.known_hashes`).
    With ``lock_token`` (the run's store lock), each commit first checks that the run still
    holds the store and raises LockLostError (a StoreError: the batch fails) if not.
    """

    store = SignalStore.open(store_url, version=version_id).bind_lock(lock_token)
    known = known_hashes or {}
    limits = limits or FileLimits()
    items = list(items)
    sizes = {it.path: _lstat_size(it.path) for it in items}

    def over(item: SourceItem, reason: str) -> dict:  # the child went over a bound or died on this item
        size, mtime = sizes[item.path]
        out = _quarantined(item, size, mtime, known.get(item.recording_id, ""), None, reason, run_id)
        now = time.time()
        out.update(seconds=0.0, t_start=now, t_end=now, size_bytes=int(size))
        return out

    if limits.isolate:
        _preload(items)
    with _thread_limit():
        # read, filter and write overlap across items when limits.overlap (Staged: see map_bounded)
        work = Staged(prepare_item, finish_item,
                      read=lambda it: read_item(it, store, run_id, known.get(it.recording_id), limits))
        rows = map_bounded(work, items, limits, over, mapped=[sizes[it.path][0] for it in items])
    if limits.isolate:
        _warm_filters(items, rows, store.config)
    return rows


def _preload(items: list[SourceItem]) -> None:
    """Import here, once per worker process, what processing ``items`` imports lazily.

    Each batch runs in a forked child (:func:`map_bounded`): what a child imports dies with it, so
    without this every batch re-imported MNE's filter design, zarr and the codecs (measured: ~0.5 s
    per batch, a fifth of a batch of four 20-minute files). Reader modules by file extension only:
    the parent never opens the files.
    """
    import mne.filter  # noqa: F401 - the standardizer's filter design
    import numcodecs.blosc  # noqa: F401 - chunk compression
    import zarr  # noqa: F401 - array metadata
    import zarr.codecs  # noqa: F401

    exts = {os.path.splitext(it.path.lower().removesuffix(".gz"))[1] for it in items}
    preload_readers({EXTENSIONS[e] for e in exts if e in EXTENSIONS})


def _warm_filters(items: list[SourceItem], rows: list[dict], cfg) -> None:
    """Cache here the filters of the rates this batch met, so the next batches' children inherit them."""
    notch = {it.recording_id: it.notch_hz for it in items}
    for row in rows:
        rec = row.get("recording_row") or {}
        if row.get("status") == "ingested" and rec.get("orig_sfreq"):
            warm_filters(float(rec["orig_sfreq"]), cfg, notch.get(row["recording_id"]))
