"""Discovery: list the EEG files of a source tree as ingestion work items.

Why no file is opened here: listing a 70k-file archive must stay a metadata
walk (names, sizes, mtimes); headers are read by the parallel workers. Files
are recognised by extension (case-insensitive). Only the *entry* file of a
multi-file format is listed: BrainVision ``.vhdr`` (its ``.vmrk``/``.eeg``
sidecars are read through it) and EEGLAB ``.set`` (its ``.fdt``).

Subject and session come from the file's place in the tree:
:func:`neurolm.ingest.layouts.infer_metadata` (BIDS, TUH, generic) for local
trees; for remote (fsspec) trees, and whenever that module is unavailable, the
generic rule: ``<subject>/<session>/.../file`` → first and second directory,
``<subject>/file`` → session ``""``, a file at the root → subject = file stem.

``recording_id`` = ``<dataset>-<slug of the relative path>-<8 hex of its sha1>``:
stable across runs and machines (it depends only on the dataset name and the
path *relative to the root*, so moving the archive does not re-ingest it),
unique even when two paths slug alike, and a valid Zarr key.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

from neurolm.ingest.items import SourceItem
from storage import fs

EEG_EXTENSIONS = {
    ".edf": "edf", ".bdf": "bdf", ".gdf": "gdf", ".fif": "fif",
    ".vhdr": "brainvision", ".set": "eeglab", ".cnt": "cnt",
}
SIDECAR_EXTENSIONS = (".vmrk", ".eeg", ".fdt")  # read through their entry file, never listed
_SLUG = re.compile(r"[^a-z0-9]+")
_MAX_SLUG = 96


def slug(text: str) -> str:
    """Lower-case identifier (``"My EEG Set"`` → ``"my_eeg_set"``); same rule as the layouts module."""
    out = _SLUG.sub("_", str(text).lower()).strip("_")
    return out or "dataset"


def recording_id_for(dataset: str, rel_path: str) -> str:
    """Stable, unique, Zarr-safe id of a file of ``dataset`` at ``rel_path`` (POSIX, relative to the root)."""
    rel = rel_path.replace(os.sep, "/").lstrip("/")
    digest = hashlib.sha1(f"{dataset}/{rel}".encode()).hexdigest()[:8]
    return f"{slug(dataset)}-{slug(rel)[:_MAX_SLUG]}-{digest}"


@dataclass(frozen=True)
class SourceFile:
    """A listed file: its work item plus the stat data the catalog diff needs."""

    item: SourceItem
    rel_path: str
    size: int
    mtime: float
    format: str  # guessed from the extension; the reader decides for real


def format_for(path: str) -> str | None:
    """Format name for an EEG entry-file extension, None for anything else (sidecars included)."""
    return EEG_EXTENSIONS.get(PurePosixPath(path).suffix.lower())


def generic_metadata(rel_path: str, dataset: str) -> dict:
    """The fallback layout rule (see module docstring)."""
    parts = [p for p in rel_path.replace(os.sep, "/").split("/") if p not in ("", ".")]
    dirs = parts[:-1]
    if dirs:
        subject, session = dirs[0], (dirs[1] if len(dirs) >= 2 else "")
    else:
        subject, session = PurePosixPath(parts[-1]).stem, ""
    return {"subject": subject, "session": session, "subject_key": f"{dataset}:{subject}", "extra": {}}


def _metadata(root: str, path: str, rel: str, dataset: str, layout: str, family: str | None,
              tuh_le: str = "skip") -> dict:
    if fs.is_local(root):
        try:
            from neurolm.ingest import layouts
        except ImportError:  # layouts not installed: generic rule
            layouts = None
        if layouts is not None:
            return layouts.infer_metadata(root, path, layout=layout, dataset=dataset, family=family, tuh_le=tuh_le)
    meta = generic_metadata(rel, dataset)
    if family:
        meta["subject_key"] = f"{family}:{meta['subject']}"
    return meta


def _mtime(info: dict) -> float:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        v = info.get(key)
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def _walk(root: str) -> list[tuple[str, str, int, float]]:
    """(full path/URL, relative POSIX path, size, mtime) of every EEG entry file, sorted by relative path."""
    out: list[tuple[str, str, int, float]] = []
    if fs.is_local(root):
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in filenames:
                if name.startswith(".") or format_for(name) is None:
                    continue
                full = os.path.join(dirpath, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue  # vanished or a dangling link: not a candidate
                out.append((full, os.path.relpath(full, root).replace(os.sep, "/"), int(st.st_size), float(st.st_mtime)))
    else:
        f, base = fs.get_fs(root)
        proto = root.split("://", 1)[0]
        base = base.rstrip("/")
        for p, info in f.find(base, detail=True).items():
            rel = p[len(base):].lstrip("/") if p.startswith(base) else p
            if info.get("type", "file") != "file" or format_for(rel) is None:
                continue
            if any(part.startswith(".") for part in rel.split("/")):
                continue
            out.append((f"{proto}://{p.lstrip('/')}", rel, int(info.get("size") or 0), _mtime(info)))
    out.sort(key=lambda t: t[1])
    return out


def discover(root: str, dataset: str, *, notch_hz: float | None = None, layout: str = "auto",
             family: str | None = None, crop_end_s: float = 0.0, tuh_le: str = "skip") -> list[SourceFile]:
    """Every EEG entry file under ``root`` as a :class:`SourceFile`, sorted by relative path.

    ``notch_hz`` is the dataset's mains frequency (None: store default);
    ``crop_end_s`` is cut from each recording before it is stored (0 for
    pretraining, which crops when windowing so the stored signal stays whole).
    ``tuh_le``: TUH -LE montage files are skipped (default, as NeuroLM) or kept;
    see :func:`neurolm.ingest.layouts.le_montage_reason`.
    """
    root = fs.normalize_url(root)
    files = []
    for full, rel, size, mtime in _walk(root):
        meta = _metadata(root, full, rel, dataset, layout, family, tuh_le)
        extra = tuple(sorted((str(k), str(v)) for k, v in (meta.get("extra") or {}).items()))
        item = SourceItem(
            path=full,
            recording_id=recording_id_for(dataset, rel),
            dataset=dataset,
            subject=str(meta["subject"]),
            session=str(meta.get("session") or ""),
            subject_key=str(meta.get("subject_key") or f"{dataset}:{meta['subject']}"),
            notch_hz=notch_hz,
            crop_end_s=crop_end_s,
            extra=extra,
        )
        files.append(SourceFile(item=item, rel_path=rel, size=size, mtime=mtime, format=format_for(rel) or ""))
    return files
