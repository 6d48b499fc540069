"""Incremental catalog: what changed in the source since the store last saw it.

Rules (the reason each exists):

- Files are matched to catalog rows by ``recording_id`` (dataset + path relative
  to the root), so moving the archive to another mount changes nothing.
- Unchanged = same size and mtime. Only when either differs is the content
  hashed, so a ``touch`` or a copy that kept the bytes is not re-ingested (its
  row just gets the new mtime) while a real edit is.
- Content hash (:func:`content_hash`): ``sha256:<hex>`` of the whole file up to
  64 MiB; above that ``sha256-edges:<hex>`` of (size, first MiB, last MiB).
  Why: hashing a 2 GB EDF at every change would dominate the diff, and a
  size-preserving edit confined to the middle of a large file while keeping
  the mtime is not a realistic archive event; the worker still re-reads any
  file whose size or mtime changed.
- A file that vanished from the source gets status ``removed`` with a reason.
  Its committed signal and its recordings row are **kept** (never lose
  committed data silently); ``neurolm inspect`` lists them, and a rebuild or an
  explicit deletion drops them.
- Quarantined files are not retried while unchanged (a broken header stays
  broken), except rows whose reason starts with ``internal error`` (a bug of
  ours, which a new release may have fixed).
- A row says ``ingested`` but its commit marker is gone → re-ingested.
- Files under the root that are not work items (the listing's ``skipped``:
  unknown extension, compressed, sidecar, broken link...) get status
  ``skipped`` and the reason, so every file is accounted for. They are not
  hashed or opened (cheap for big archives). A skipped file that vanishes
  loses its row (nothing of it was stored); a file that was ingested and is
  now skipped (e.g. it became a broken link) is ``removed`` like a vanished
  one, with the skip reason.

Crash recovery (:func:`recover_committed`): the commit marker of every
recording carries its catalog and recordings rows, so recordings committed by a
run that was killed before it rewrote the tables are restored from the markers
instead of being redone.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import pandas as pd

from neurolm.ingest.discover import SkippedFile, SourceFile, generic_metadata, recording_id_for
from storage import fs

log = logging.getLogger(__name__)

FULL_HASH_MAX = 64 * 1024 * 1024
EDGE = 1024 * 1024
CATALOG_COLUMNS = ("path", "format", "size_bytes", "mtime", "content_hash", "dataset", "subject", "session",
                   "status", "reason", "recording_id", "run_id")
INTERNAL_ERROR = "internal error"
REMOVED_REASON = "source file no longer present (signal kept)"
SKIPPED = "skipped"


def content_hash(url: str, size: int | None = None) -> str:
    """Content hash of a source file (see module docstring for the large-file rule)."""
    url = fs.normalize_url(url)
    opener = open if fs.is_local(url) else None
    if opener is None:
        f, p = fs.get_fs(url)
        size = int(f.size(p)) if size is None else size
        handle = f.open(p, "rb")
    else:
        import os

        size = os.path.getsize(url) if size is None else size
        handle = open(url, "rb")
    h = hashlib.sha256()
    with handle as fh:
        if size <= FULL_HASH_MAX:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            return f"sha256:{h.hexdigest()}"
        h.update(str(size).encode())
        h.update(fh.read(EDGE))
        fh.seek(max(0, size - EDGE))
        h.update(fh.read(EDGE))
    return f"sha256-edges:{h.hexdigest()}"


def catalog_row(sf: SourceFile, *, status: str, reason: str | None, content_hash: str, run_id: str,
                fmt: str | None = None) -> dict:
    """A CATALOG row for a listed file."""
    it = sf.item
    return {
        "path": it.path, "format": fmt or sf.format or None, "size_bytes": int(sf.size), "mtime": float(sf.mtime),
        "content_hash": content_hash, "dataset": it.dataset, "subject": it.subject, "session": it.session,
        "status": status, "reason": reason, "recording_id": it.recording_id, "run_id": run_id,
    }


def skipped_row(sk: SkippedFile, dataset: str, run_id: str) -> dict:
    """A CATALOG row (status ``skipped``) for a file that is not a work item; no hash, nothing opened."""
    meta = generic_metadata(sk.rel_path, dataset)
    return {
        "path": sk.path, "format": None, "size_bytes": int(sk.size), "mtime": float(sk.mtime), "content_hash": "",
        "dataset": dataset, "subject": str(meta["subject"]), "session": str(meta["session"]), "status": SKIPPED,
        "reason": sk.reason, "recording_id": recording_id_for(dataset, sk.rel_path), "run_id": run_id,
    }


@dataclass
class CatalogDiff:
    """Outcome of comparing a source listing with the stored catalog."""

    new: list[SourceFile] = field(default_factory=list)
    changed: list[SourceFile] = field(default_factory=list)
    unchanged_rows: list[dict] = field(default_factory=list)  # kept (mtime refreshed when only touched)
    removed_rows: list[dict] = field(default_factory=list)  # vanished files, status "removed"
    known_hashes: dict[str, str] = field(default_factory=dict)  # recording_id -> hash already computed
    skipped_rows: list[dict] = field(default_factory=list)  # every file under the root that is not a work item
    dropped_ids: set[str] = field(default_factory=set)  # rows of skipped files that vanished: deleted

    @property
    def to_ingest(self) -> list[SourceFile]:
        return self.new + self.changed

    @property
    def nothing_to_do(self) -> bool:
        return not self.new and not self.changed and not self.removed_rows


def _prev_rows(previous: pd.DataFrame | None, dataset: str) -> dict[str, dict]:
    if previous is None or previous.empty:
        return {}
    sub = previous[previous["dataset"] == dataset]
    rows = sub.where(sub.notna(), None).to_dict("records")
    return {r["recording_id"]: r for r in rows if r.get("recording_id")}


def diff_catalog(files: list[SourceFile], previous: pd.DataFrame | None, dataset: str,
                 committed: set[str], run_id: str = "") -> CatalogDiff:
    """Classify listed files against the stored catalog of ``dataset`` (rows of other datasets are ignored).

    ``files.skipped`` (a :class:`~neurolm.ingest.discover.Listing`) become ``skipped`` rows.
    """
    prev = _prev_rows(previous, dataset)
    out = CatalogDiff()
    seen: set[str] = set()
    for sk in getattr(files, "skipped", ()):
        row = skipped_row(sk, dataset, run_id)
        rid = row["recording_id"]
        seen.add(rid)
        p = prev.get(rid)
        if p is not None and p["status"] in ("ingested", "removed"):
            out.removed_rows.append({**p, "status": "removed", "reason": f"no longer ingestible: {sk.reason} "
                                                                         "(signal kept)"})
        elif p is not None and p["status"] == SKIPPED and (p["reason"], p["path"]) == (row["reason"], row["path"]):
            out.skipped_rows.append({**p, "size_bytes": row["size_bytes"], "mtime": row["mtime"]})  # keeps its run_id
        else:
            out.skipped_rows.append(row)
    for sf in files:
        rid = sf.item.recording_id
        seen.add(rid)
        p = prev.get(rid)
        if p is None or p["status"] == SKIPPED:
            out.new.append(sf)
            continue
        if p["status"] == "removed" or (
                p["status"] == "quarantined" and str(p.get("reason") or "").startswith(INTERNAL_ERROR)):
            out.changed.append(sf)  # the worker skips it cheaply if its committed signal is still valid
            continue
        same_stat = int(p["size_bytes"]) == sf.size and float(p["mtime"]) == sf.mtime
        if not same_stat:
            h = content_hash(sf.item.path, sf.size)
            out.known_hashes[rid] = h
            if h != p["content_hash"] or int(p["size_bytes"]) != sf.size:
                out.changed.append(sf)
                continue
            p = {**p, "mtime": float(sf.mtime), "path": sf.item.path}
        if p["status"] == "ingested" and rid not in committed:
            out.changed.append(sf)  # its signal is gone from the store: redo
            continue
        out.unchanged_rows.append({**p, "path": sf.item.path})
    for rid, p in prev.items():
        if rid in seen:
            continue
        if p["status"] == "removed":
            out.unchanged_rows.append(p)
        elif p["status"] == SKIPPED:
            out.dropped_ids.add(rid)
        else:
            out.removed_rows.append({**p, "status": "removed", "reason": REMOVED_REASON})
    return out


def merge_rows(previous: pd.DataFrame | None, new_rows: list[dict], key: str) -> pd.DataFrame:
    """``previous`` with rows replaced/added by ``new_rows`` (matched on ``key``), sorted by key.

    Sorting makes the table independent of batch completion order, so a
    resumed run and an uninterrupted one write identical tables.
    """
    frames = []
    if previous is not None and not previous.empty:
        replaced = {r[key] for r in new_rows}
        frames.append(previous[~previous[key].isin(replaced)])
    if new_rows:
        frames.append(pd.DataFrame(new_rows))
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df = df.drop_duplicates(subset=[key], keep="last")
    return df.sort_values(key, kind="stable").reset_index(drop=True)


def recover_committed(store, recordings: pd.DataFrame | None) -> tuple[list[dict], list[dict]]:
    """(catalog rows, recordings rows) of committed recordings missing from the recordings table.

    They were committed by a run that died before it rewrote the tables; their
    commit markers carry both rows (see :mod:`neurolm.ingest.worker`).
    """
    known = set() if recordings is None or recordings.empty else set(recordings["recording_id"])
    cat_rows, rec_rows = [], []
    for rid in store.committed_ids():
        if rid in known:
            continue
        try:
            attrs = store.recording_meta(rid).get("attrs") or {}
        except Exception as exc:  # an unreadable marker: the recording is redone by the diff
            log.warning("cannot recover %s from its commit marker: %s", rid, exc)
            continue
        cat, rec = attrs.get("catalog_row"), attrs.get("recording_row")
        if isinstance(cat, dict) and isinstance(rec, dict):
            cat_rows.append(cat)
            rec_rows.append(rec)
    return cat_rows, rec_rows
