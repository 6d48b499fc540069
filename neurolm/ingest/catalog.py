"""Incremental catalog: what changed in the source since the store last saw it.

Rules (the reason each exists):

- Files are matched to catalog rows by ``recording_id`` (dataset + path relative
  to the root), so moving the archive to another mount changes nothing (the
  store remembers each dataset's root and asks for ``--moved`` once:
  :mod:`neurolm.ingest.roots`).
- A recording is every file it reads: the entry file plus its *parts*
  (BrainVision ``.eeg``/``.vmrk``, EEGLAB ``.fdt``, FIF split parts; see
  :mod:`neurolm.readers.parts`), recorded by the worker in the catalog's
  ``parts`` column (this stage's own, beside the CATALOG schema's columns) as
  ``[[name relative to the entry's folder, size, mtime], ...]`` (size -1:
  declared but absent). Unchanged = the entry and every part
  have the size and mtime recorded: one ``stat`` each, nothing read, so a
  nightly run over a big unchanged archive costs a metadata walk.
- A size that moved (entry or part, or a part that appeared or vanished) is a
  change: re-ingested, nothing hashed. When only mtimes moved, the content is
  hashed (:func:`source_hash`): ``sha256:<hex>`` of the whole entry file when it
  has no parts, else ``sha256-files:<hex>`` over each file's name and full
  sha256. The whole of every file is hashed, whatever its size: a same-size
  edit in the middle of a 2 GB file is caught. So a ``touch`` or a copy that
  kept the bytes is not re-ingested (its row just gets the new stats) while a
  real edit to any part is. Pipes and devices are never opened. An ingested
  row written before parts were recorded (no ``parts``) of a multi-file format
  counts as changed once (re-ingested, since what it read is unknown).
- A file that vanished from the source gets status ``removed`` with a reason.
  Its committed signal and its recordings row are **kept** (never lose
  committed data silently); ``neurolm inspect`` lists them, and a rebuild or an
  explicit deletion drops them.
- Quarantined files are not retried while every stat is unchanged, parts
  included (a broken header stays broken; a missing ``.eeg`` that appears is a
  change); when one moves the worker retries them under its per-file bounds,
  without any hashing here. Rows whose reason starts with ``internal error``
  (a bug of ours, which a new release may have fixed) are always retried.
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
import json
import logging
import os
import posixpath
import stat as stat_mod
from dataclasses import dataclass, field

import pandas as pd

from neurolm.ingest.discover import SkippedFile, SourceFile, extension, generic_metadata, recording_id_for
from storage import fs

log = logging.getLogger(__name__)

CATALOG_COLUMNS = ("path", "format", "size_bytes", "mtime", "content_hash", "dataset", "subject", "session",
                   "status", "reason", "recording_id", "run_id", "parts")
INTERNAL_ERROR = "internal error"
REMOVED_REASON = "source file no longer present (signal kept)"
SKIPPED = "skipped"
#: Entry files whose recording may read other files too (parts unknown for rows older than the ``parts`` column).
MULTI_FILE_EXTENSIONS = (".vhdr", ".set", ".fif", ".fif.gz")
_BLOCK = 4 << 20


def content_hash(url: str, size: int | None = None) -> str:
    """``sha256:<hex>`` of the whole file (``size`` is accepted for callers that have it; unused)."""
    url = fs.normalize_url(url)
    if fs.is_local(url):
        handle = open(url, "rb")
    else:
        f, p = fs.get_fs(url)
        handle = f.open(p, "rb")
    h = hashlib.sha256()
    with handle as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


def part_url(entry: str, name: str) -> str:
    """Where the part ``name`` (relative to the entry's folder) of the recording ``entry`` lives."""
    entry = fs.normalize_url(entry)
    if fs.is_local(entry):
        return os.path.normpath(os.path.join(os.path.dirname(entry), name))
    proto, rest = entry.split("://", 1)
    return f"{proto}://{posixpath.normpath(posixpath.join(posixpath.dirname(rest), name))}"


def _stat(url: str) -> tuple[int, float] | None:
    try:
        if fs.is_local(url):
            st = os.stat(url)
            return int(st.st_size), float(st.st_mtime)
        from neurolm.ingest.discover import _mtime

        f, p = fs.get_fs(url)
        info = f.info(p)
        return int(info.get("size") or 0), _mtime(info)
    except (FileNotFoundError, NotADirectoryError):
        return None


def stat_parts(entry: str, names: list[str]) -> list[list]:
    """``[[name, size, mtime], ...]`` of the parts of ``entry`` now (``[name, -1, 0.0]`` for an absent one)."""
    out = []
    for name in names:
        st = _stat(part_url(entry, name))
        out.append([name, -1, 0.0] if st is None else [name, st[0], st[1]])
    return out


def _regular(url: str) -> bool:
    """False for a local pipe, device or directory: never opened (it could block or never end).
    FileNotFoundError when absent."""
    return not fs.is_local(url) or stat_mod.S_ISREG(os.stat(url).st_mode)


def _digest(url: str) -> str:
    """:func:`content_hash` of a regular file; for anything else a digest that says what it is."""
    return content_hash(url) if _regular(url) else "not a regular file"


def source_hash(entry: str, names: list[str]) -> str:
    """Content hash of a recording: its entry file and its parts (see module docstring). OSError if unreadable."""
    entry = fs.normalize_url(entry)
    if not _regular(entry):
        raise OSError(f"{entry} is not a regular file")
    if not names:
        return content_hash(entry)
    h = hashlib.sha256()
    for name, url in [("", entry), *((n, part_url(entry, n)) for n in names)]:
        try:
            digest = _digest(url)
        except FileNotFoundError:
            if not name:
                raise
            digest = "absent"
        h.update(f"{name}\0{digest}\n".encode())
    return f"sha256-files:{h.hexdigest()}"


def encode_parts(stats: list[list]) -> str:
    """The catalog's ``parts`` cell for :func:`stat_parts` output."""
    return json.dumps(stats)


def recorded_parts(row: dict) -> list[list] | None:
    """A row's ``parts`` as a list, or None when the row predates the column (unknown)."""
    text = row.get("parts")
    if not isinstance(text, str) or not text:
        return None
    try:
        parts = json.loads(text)
    except ValueError:
        return None
    return parts if isinstance(parts, list) else None


def part_names(row: dict, path: str) -> list[str] | None:
    """Names of the recorded parts of a row; None when unknown (an ingested row of a multi-file format written
    before parts were recorded). Other rows without parts count as one-file (a quarantined file is retried
    when its entry changes, as before)."""
    parts = recorded_parts(row)
    if parts is not None:
        return [str(p[0]) for p in parts]
    return None if row.get("status") == "ingested" and extension(path) in MULTI_FILE_EXTENSIONS else []


def stat_change(row: dict, path: str, size: int, mtime: float) -> str | None:
    """How the files of a row's recording moved since the row was written, by ``stat`` alone (nothing read).

    None: the entry (``size``, ``mtime``) and every recorded part have the recorded size and mtime.
    ``"mtime"``: only mtimes moved (the bytes may be the same: hash to tell). ``"size"``: a size moved, a
    part appeared or vanished, or the parts are unknown: changed, nothing to hash.
    """
    names = part_names(row, path)
    if names is None or "size_bytes" not in row or "mtime" not in row:
        return "size"
    now, before = stat_parts(path, names), recorded_parts(row) or []
    if int(row["size_bytes"]) != int(size) or [p[1] for p in now] != [int(p[1]) for p in before]:
        return "size"
    if float(row["mtime"]) != float(mtime) or now != before:
        return "mtime"
    return None


def source_unchanged(path: str, row: dict, recorded_hash: str, known_hash: str | None = None) -> bool:
    """Whether the files a committed recording read (its catalog ``row`` and source hash) are still what was read.

    Stat only when nothing moved; the full :func:`source_hash` (or ``known_hash``, computed over the same
    parts) only when nothing but an mtime moved. OSError when a file cannot be read.
    """
    st = _stat(fs.normalize_url(path))
    change = "size" if st is None else stat_change(row, path, *st)
    if change != "mtime":
        return change is None
    return (known_hash or source_hash(path, part_names(row, path) or [])) == recorded_hash


def catalog_row(sf: SourceFile, *, status: str, reason: str | None, content_hash: str, run_id: str,
                fmt: str | None = None, parts: list[list] | None = None) -> dict:
    """A CATALOG row for a listed file (``parts``: its :func:`stat_parts`, None when unknown)."""
    it = sf.item
    return {
        "path": it.path, "format": fmt or sf.format or None, "size_bytes": int(sf.size), "mtime": float(sf.mtime),
        "content_hash": content_hash, "dataset": it.dataset, "subject": it.subject, "session": it.session,
        "status": status, "reason": reason, "recording_id": it.recording_id, "run_id": run_id,
        "parts": None if parts is None else encode_parts(parts),
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
        change = stat_change(p, sf.item.path, sf.size, sf.mtime)
        if change is not None:
            # A size moved, or a quarantined file moved at all: the worker decides, under its per-file bounds
            # (a huge sparse file is never hashed here). Only an ingested recording whose mtimes alone moved
            # is hashed, to tell a touch or a byte-identical copy from an edit.
            if change == "size" or p["status"] != "ingested":
                out.changed.append(sf)
                continue
            names = part_names(p, sf.item.path) or []
            try:
                h = source_hash(sf.item.path, names)
            except OSError:  # unreadable now: the worker quarantines it with the reason
                out.changed.append(sf)
                continue
            out.known_hashes[rid] = h  # over the parts its commit marker records
            if h != p["content_hash"]:
                out.changed.append(sf)
                continue
            p = {**p, "mtime": float(sf.mtime), "path": sf.item.path,
                 "parts": encode_parts(stat_parts(sf.item.path, names))}
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
