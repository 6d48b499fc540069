"""The one batch worker every ingestion path uses (generic archives and dataset adapters).

``process_batch`` takes small :class:`SourceItem`s, and for each: stats and
hashes the file, reads the header, selects the vocabulary channels, reads the
signal, standardizes it and writes + commits it to the signal store. It
returns small dict rows (catalog and recordings rows), never arrays, because
whatever a Prefect/Dask task returns is kept by the orchestrator (prefect#12668).

Failure policy (why a batch never crashes): a source-file problem is a
``BadInputError`` and becomes a ``quarantined`` catalog row with its one-line
reason; any other exception is our bug, quarantined as ``internal error: ...``
with the traceback logged, so one odd file cannot cost the other files of the
batch or the run. Only store-level failures (the store cannot be opened or
written at all) propagate: retrying those per file would be pointless.

Idempotence (why a rerun after ``kill -9`` redoes nothing committed): the
commit marker's attrs hold the source hash, the ingest key (store config hash +
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
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator

from neurolm.errors import BadInputError
from neurolm.ingest.catalog import INTERNAL_ERROR, content_hash
from neurolm.ingest.items import SourceItem
from storage import fs

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
        return int(st.st_size), float(st.st_mtime)
    from neurolm.ingest.discover import _mtime

    f, p = fs.get_fs(path)
    info = f.info(p)
    return int(info.get("size") or 0), _mtime(info)


def _catalog_row(item: SourceItem, size: int, mtime: float, chash: str, fmt: str | None, status: str,
                 reason: str | None, run_id: str) -> dict:
    return {"path": item.path, "format": fmt, "size_bytes": int(size), "mtime": float(mtime),
            "content_hash": chash, "dataset": item.dataset, "subject": item.subject, "session": item.session,
            "status": status, "reason": reason, "recording_id": item.recording_id, "run_id": run_id}


def _select(item: SourceItem, header):
    """Channels to keep, from the header: labels, declared units and digitized positions.

    Returns (selection over the header's channels, position mapping report).
    """
    import warnings

    from neurolm.positions import map_positions
    from neurolm.vocab import select_channels

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


def _ingest_one(item: SourceItem, store, run_id: str, chash: str, size: int, mtime: float) -> dict:
    from neurolm.ingest.layouts import le_montage_reason
    from neurolm.readers import read_header, read_recording
    from neurolm.standardize import standardize

    key = ingest_key(store.config_hash, item)
    if store.is_committed(item.recording_id):
        attrs = store.recording_meta(item.recording_id).get("attrs") or {}
        if attrs.get("source_hash") == chash and attrs.get("ingest_key") == key:
            cat = {**attrs["catalog_row"], "path": item.path, "mtime": float(mtime)}
            return {"recording_id": item.recording_id, "status": "skipped", "reason": None,
                    "catalog_row": cat, "recording_row": attrs["recording_row"],
                    "duration_s": float(attrs["recording_row"]["duration_s"])}
    fmt = None
    cnt_format = dict(item.extra).get("cnt_format", "auto")  # SEED: int32, as the reference reads it
    with localized(item.path) as local:
        header = read_header(local, cnt_format)
        le = le_montage_reason(dict(item.extra), header.ch_names)  # TUH -LE files: skipped like the reference
        if le is not None:
            raise BadInputError(le)
        fmt = header.format
        sel, position_mapping = _select(item, header)
        picks = [header.ch_names[p] for p in sel.positions]
        raw = read_recording(local, picks=picks, cnt_format=cnt_format)
    # the rows read are the picks, in order; `dropped` stays the header-level audit
    sel = dataclasses.replace(sel, positions=tuple(range(len(picks))))
    rec = standardize(raw, sel, store.config, notch_hz=item.notch_hz, crop_end_s=item.crop_end_s)
    del raw
    cat = _catalog_row(item, size, mtime, chash, fmt, "ingested", None, run_id)
    row = {
        "recording_id": item.recording_id, "dataset": item.dataset, "subject": item.subject,
        "session": item.session, "subject_key": item.subject_key or f"{item.dataset}:{item.subject}",
        "source_path": item.path, "ch_names": ",".join(rec.ch_names), "n_channels": len(rec.ch_names),
        "duration_s": float(rec.duration_s), "orig_sfreq": float(rec.orig_sfreq),
        "n_samples": int(rec.data.shape[1]), "flags": ",".join(rec.flags),
    }
    attrs = {"source_hash": chash, "ingest_key": key, "catalog_row": cat, "recording_row": row,
             "notch_hz": item.notch_hz, "extra": dict(item.extra),
             # the rest of the item's settings, so a rebuild re-ingests it exactly as here
             "crop_end_s": float(item.crop_end_s),
             "channels": list(item.channels) if item.channels is not None else None,
             "subject_key": row["subject_key"],
             "dropped_channels": [list(d) for d in sel.dropped],
             "position_mapping": position_mapping}
    store.write_recording(item.recording_id, rec, attrs)
    return {"recording_id": item.recording_id, "status": "ingested", "reason": None, "catalog_row": cat,
            "recording_row": row, "duration_s": float(rec.duration_s), "format": fmt}


def process_item(item: SourceItem, store, run_id: str = "", known_hash: str | None = None) -> dict:
    """Ingest one item into an open store; always returns a row dict (see :func:`process_batch`)."""
    t0, started = time.perf_counter(), time.time()
    size, mtime, chash, fmt = 0, 0.0, "", None
    try:
        try:
            size, mtime = _stat(item.path)
        except OSError as exc:
            raise BadInputError(f"cannot stat source file: {exc.strerror or exc}") from None
        try:
            chash = known_hash or content_hash(item.path, size)
        except OSError as exc:
            raise BadInputError(f"cannot read source file: {exc.strerror or exc}") from None
        out = _ingest_one(item, store, run_id, chash, size, mtime)
    except BadInputError as exc:
        out = {"recording_id": item.recording_id, "status": "quarantined", "reason": exc.reason,
               "catalog_row": _catalog_row(item, size, mtime, chash, fmt, "quarantined", exc.reason, run_id),
               "recording_row": None, "duration_s": 0.0}
    except MemoryError:
        raise  # the process is in trouble; let the orchestrator see it
    except Exception as exc:  # a bug of ours: quarantine, log the traceback, keep the batch going
        from neurolm.errors import StoreError

        if isinstance(exc, StoreError):
            raise
        reason = " ".join(f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}".split())[:500]
        log.error("internal error ingesting %s:\n%s", item.path, traceback.format_exc())
        out = {"recording_id": item.recording_id, "status": "quarantined", "reason": reason,
               "catalog_row": _catalog_row(item, size, mtime, chash, fmt, "quarantined", reason, run_id),
               "recording_row": None, "duration_s": 0.0}
    out["seconds"] = time.perf_counter() - t0
    out["t_start"], out["t_end"] = started, time.time()  # epoch: lets a caller measure worker utilisation
    out["size_bytes"] = int(size)
    return out


def process_batch(items: Iterable[SourceItem], store_url: str, version_id: str, *, run_id: str = "",
                  known_hashes: dict[str, str] | None = None, lock_token: str | None = None) -> list[dict]:
    """Ingest a batch of items into store version ``version_id``; one small row dict per item.

    Each row: ``recording_id``, ``status`` (``ingested`` | ``skipped`` (already
    committed, same source and settings) | ``quarantined``), ``reason``,
    ``catalog_row`` (a CATALOG row), ``recording_row`` (a RECORDINGS row without
    ``split``, None when quarantined), ``duration_s``, ``seconds`` (wall time),
    ``size_bytes``, ``t_start``/``t_end`` (epoch seconds). Never raises for a file problem.
    With ``lock_token`` (the run's store lock), each commit first checks that the run still
    holds the store and raises LockLostError (a StoreError: the batch fails) if not.
    """
    from storage.signal_store import SignalStore

    store = SignalStore.open(store_url, version=version_id).bind_lock(lock_token)
    known = known_hashes or {}
    with _thread_limit():
        return [process_item(it, store, run_id, known.get(it.recording_id)) for it in items]
