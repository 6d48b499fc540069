"""Discovery: list the EEG files of a source tree as ingestion work items.

Why no file is opened here: listing a 70k-file archive must stay a metadata
walk (names, sizes, mtimes); headers are read by the parallel workers. Files
are recognised by extension (case-insensitive; ``.fif.gz`` is a FIF, which MNE
reads compressed). Only the *entry* file of a multi-file format is listed:
BrainVision ``.vhdr`` (its ``.vmrk``/``.eeg`` sidecars are read through it) and
EEGLAB ``.set`` (its ``.fdt``).

Every other file under the root is accounted for, never silently ignored: the
listing's ``skipped`` holds each one with why (unknown extension, compressed,
sidecar of another recording, hidden, broken link, symbolic-link loop, a link
to something listed under its own path, unreadable directory); the catalog
records them with status ``skipped``. It costs one ``lstat`` per file (links
add a ``realpath``): still a metadata walk.

Subject and session come from the file's place in the tree:
:func:`neurolm.ingest.layouts.infer_metadata` (BIDS, TUH, generic) for local
trees; for remote (fsspec) trees, and whenever that module is unavailable, the
generic rule: ``<subject>/<session>/.../file`` → first and second directory,
``<subject>/file`` → session ``""``, a file at the root → subject = file stem.

``recording_id`` = ``<dataset>-<slug of the relative path>-<8 hex of its sha1>``
(a dataset slug longer than 64 characters is cut to a prefix + 8 hex of its sha1):
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
    ".edf": "edf", ".bdf": "bdf", ".gdf": "gdf", ".fif": "fif", ".fif.gz": "fif",
    ".vhdr": "brainvision", ".set": "eeglab", ".cnt": "cnt",
}
SIDECAR_EXTENSIONS = (".vmrk", ".eeg", ".fdt")  # read through their entry file, never listed
_SIDECAR_OF = {".vmrk": ".vhdr", ".eeg": ".vhdr", ".fdt": ".set"}
COMPRESSED_EXTENSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip", ".tar", ".tgz", ".7z", ".rar", ".lz4")
_SLUG = re.compile(r"[^a-z0-9]+")
_MAX_SLUG = 96
_MAX_DATASET_SLUG = 64  # with the path slug and the digest: at most 170 characters (store ids: 200)


def slug(text: str) -> str:
    """Lower-case identifier (``"My EEG Set"`` → ``"my_eeg_set"``); same rule as the layouts module."""
    out = _SLUG.sub("_", str(text).lower()).strip("_")
    return out or "dataset"


def recording_id_for(dataset: str, rel_path: str) -> str:
    """Stable, unique, Zarr-safe id of a file of ``dataset`` at ``rel_path`` (POSIX, relative to the root)."""
    rel = rel_path.replace(os.sep, "/").lstrip("/")
    digest = hashlib.sha1(f"{dataset}/{rel}".encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{_short(slug(dataset), _MAX_DATASET_SLUG)}-{slug(rel)[:_MAX_SLUG]}-{digest}"


def _short(text: str, limit: int) -> str:
    """``text`` when it fits ``limit``, else a readable prefix + 8 hex of its sha1 (ids fit any folder name)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 9]}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class SourceFile:
    """A listed file: its work item plus the stat data the catalog diff needs."""

    item: SourceItem
    rel_path: str
    size: int
    mtime: float
    format: str  # guessed from the extension; the reader decides for real


@dataclass(frozen=True)
class SkippedFile:
    """A file (or a link, or a directory not walked) under the root that is not a work item, and why."""

    path: str
    rel_path: str
    size: int
    mtime: float
    reason: str


class Listing(list):
    """The :class:`SourceFile` s of a walk (a plain list of them) plus ``skipped``: everything else, with why."""

    def __init__(self, files=(), skipped=()):
        super().__init__(files)
        self.skipped: list[SkippedFile] = list(skipped)


def extension(path: str) -> str:
    """Lower-case extension, ``.fif.gz`` counted as one."""
    name = PurePosixPath(path).name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else PurePosixPath(name).suffix


def format_for(path: str) -> str | None:
    """Format name for an EEG entry-file extension, None for anything else (sidecars included)."""
    return EEG_EXTENSIONS.get(extension(path))


def skip_reason(name: str, siblings: frozenset[str]) -> str | None:
    """Why the file ``name`` (in a directory holding ``siblings``, lower-case) is not listed; None if it is."""
    if name.startswith("."):
        return "hidden file"
    ext = extension(name)
    if ext in EEG_EXTENSIONS:
        return None
    if ext in _SIDECAR_OF:
        entry = _SIDECAR_OF[ext]
        stem = name[: -len(ext)].lower()
        if stem + entry in siblings:
            return f"sidecar of another recording (read through its {entry})"
        return f"{ext} sidecar without its {entry} header file"
    if ext in COMPRESSED_EXTENSIONS:
        inner = extension(name[: -len(ext)])
        what = f"compressed {inner.upper().lstrip('.')} recording" if inner in EEG_EXTENSIONS else "compressed file"
        return f"{what} ({ext}): decompress it to ingest"
    return f"unknown extension {ext or '(none)'}"


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


_LINK_INSIDE = "link to a {} under the source root (ingested under its own path)"


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a non-UTF-8 byte in the name (surrogate-escaped by os.fsdecode)
        return False
    return True


def printable(path: str) -> str:
    """``path`` as valid UTF-8 text: undecodable bytes shown as ``\\xNN`` (for the catalog and reports)."""
    return path if _utf8(path) else os.fsencode(path).decode("utf-8", "backslashreplace")


_BAD_NAME = "name is not valid UTF-8 ({}): rename it to ingest {}"


def _walk_local(root: str) -> tuple[list[tuple[str, str, int, float]], list[SkippedFile]]:
    """Walk ``root`` without ever leaving it: directory links are never followed (a link inside the root is
    walked under its own path, one outside is out of bounds), each real directory is walked once (device +
    inode), and only regular files are listed."""
    from neurolm.ingest.limits import not_regular

    out: list[tuple[str, str, int, float]] = []
    skipped: list[SkippedFile] = []
    real_root = os.path.realpath(root)

    def rel(full: str) -> str:
        return os.path.relpath(full, root).replace(os.sep, "/")

    def skip(full: str, reason: str) -> None:
        try:
            st = os.lstat(full)
            size, mtime = int(st.st_size), float(st.st_mtime)
        except OSError:
            size, mtime = 0, 0.0
        skipped.append(SkippedFile(printable(full), printable(rel(full)), size, mtime, reason))

    top = os.stat(root)
    visited = {(top.st_dev, top.st_ino)}
    stack = [root]
    while stack:
        dirpath = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if dirpath != root:
                skip(dirpath, f"unreadable directory: {exc.strerror or exc}")
            continue
        siblings = frozenset(e.name.lower() for e in entries)
        subdirs = []
        for e in entries:
            full, name = e.path, e.name
            try:
                is_link, is_dir = e.is_symlink(), e.is_dir()
            except OSError:
                is_link, is_dir = True, False
            if is_dir:
                if name.startswith("."):
                    skip(full, "hidden directory (not walked)")
                elif not _utf8(name):
                    skip(full, "folder " + _BAD_NAME.format("not walked", "its files"))
                elif is_link:
                    real = os.path.realpath(full)
                    if not _inside(real, real_root):
                        skip(full, "link to a directory outside the source root (not followed)")
                    elif real in (real_root, os.path.realpath(dirpath)) or _inside(os.path.realpath(dirpath), real):
                        skip(full, "symbolic link loop (directory already walked)")
                    else:
                        skip(full, _LINK_INSIDE.format("directory"))
                else:
                    try:
                        st = os.stat(full)
                    except OSError as exc:
                        skip(full, f"unreadable directory: {exc.strerror or exc}")
                        continue
                    if (st.st_dev, st.st_ino) in visited:  # a bind mount or hard-linked directory
                        skip(full, "directory already walked under another path")
                        continue
                    visited.add((st.st_dev, st.st_ino))
                    subdirs.append(full)
                continue
            reason = None if _utf8(name) else "file " + _BAD_NAME.format("cannot be recorded in the catalog", "it")
            reason = reason or skip_reason(name, siblings)
            if reason is None and is_link:
                real = os.path.realpath(full)
                if not os.path.exists(full):
                    reason = "symbolic link loop" if os.path.islink(real) else "broken symbolic link"
                elif not _inside(real, real_root):
                    reason = "link to a file outside the source root (not followed)"
                else:
                    reason = _LINK_INSIDE.format("file")
            if reason is not None:
                skip(full, reason)
                continue
            try:
                st = os.stat(full)
            except OSError as exc:
                skip(full, f"cannot stat: {exc.strerror or exc}")
                continue
            what = not_regular(st.st_mode)
            if what is not None:  # a FIFO named .edf would block the reader forever
                skip(full, f"not a regular file ({what})")
                continue
            out.append((full, rel(full), int(st.st_size), float(st.st_mtime)))
        stack.extend(reversed(subdirs))
    return out, skipped


def _walk_remote(root: str) -> tuple[list[tuple[str, str, int, float]], list[SkippedFile]]:
    f, base = fs.get_fs(root)
    proto = root.split("://", 1)[0]
    base = base.rstrip("/")
    found = {p: info for p, info in f.find(base, detail=True).items() if info.get("type", "file") == "file"}
    by_dir: dict[str, set[str]] = {}
    for p in found:
        d, _, name = p.rpartition("/")
        by_dir.setdefault(d, set()).add(name.lower())
    out, skipped = [], []
    for p, info in found.items():
        rel = p[len(base):].lstrip("/") if p.startswith(base) else p
        url, size, mtime = f"{proto}://{p.lstrip('/')}", int(info.get("size") or 0), _mtime(info)
        d, _, name = p.rpartition("/")
        reason = skip_reason(name, frozenset(by_dir[d]))
        if reason is None and any(part.startswith(".") for part in rel.split("/")):
            reason = "hidden file"
        if reason is not None:
            skipped.append(SkippedFile(url, rel, size, mtime, reason))
        else:
            out.append((url, rel, size, mtime))
    return out, skipped


def _walk(root: str) -> tuple[list[tuple[str, str, int, float]], list[SkippedFile]]:
    """(full path/URL, relative POSIX path, size, mtime) of every EEG entry file, and everything else skipped.

    Both sorted by relative path.
    """
    out, skipped = _walk_local(root) if fs.is_local(root) else _walk_remote(root)
    out.sort(key=lambda t: t[1])
    skipped.sort(key=lambda s: s.rel_path)
    return out, skipped


def discover(root: str, dataset: str, *, notch_hz: float | None = None, layout: str = "auto",
             family: str | None = None, crop_end_s: float = 0.0, tuh_le: str = "skip") -> Listing:
    """Every EEG entry file under ``root`` as a :class:`SourceFile`, sorted by relative path.

    The result is a list of them; its ``skipped`` attribute lists every other
    file under ``root`` with the reason it is not ingested.

    ``notch_hz`` is the dataset's mains frequency (None: store default);
    ``crop_end_s`` is cut from each recording before it is stored (0 for
    pretraining, which crops when windowing so the stored signal stays whole).
    ``tuh_le``: TUH -LE montage files are skipped (default, as NeuroLM) or kept;
    see :func:`neurolm.ingest.layouts.le_montage_reason`.
    """
    root = fs.normalize_url(root)
    listed, skipped = _walk(root)
    files = Listing(skipped=skipped)
    for full, rel, size, mtime in listed:
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
            root=root if fs.is_local(root) else "",
        )
        files.append(SourceFile(item=item, rel_path=rel, size=size, mtime=mtime, format=format_for(rel) or ""))
    return files
