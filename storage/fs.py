"""Filesystem helpers shared by every store (signal store, token corpus, checkpoints).

Why this module exists: stores live on a local disk in tests and demos but on
shared or object storage in production. Every store therefore addresses its files
by *URL* (a plain local path, ``file://...``, ``memory://...``, ``s3://...``, any
fsspec protocol) and goes through these helpers, which pick the right primitive:

- local paths use ``os`` directly (temp file + fsync + ``os.replace`` is the only
  crash-safe way to publish a file on POSIX);
- other URLs use fsspec, where a single ``put``/``pipe`` of a whole object is
  atomic on object stores (S3, GCS, Azure) and on the in-memory filesystem.

Conventions: URLs never end in ``/``; :func:`join` builds child URLs; names
returned by :func:`listdir` are bare entry names, not full paths.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import fsspec
from fsspec.core import url_to_fs

from neurolm.errors import StoreError

_TMP_MARK = ".tmp-"  # infix of temporary files; listdir() hides them


def normalize_url(url: str | os.PathLike[str]) -> str:
    """Canonical form of a store URL: absolute local path, or ``proto://path`` without a trailing slash.

    ``file://`` URLs become plain absolute paths so a store opened both ways is
    recognised as the same store (content hashes, lock files, caches).
    """
    s = os.fspath(url)
    if s.startswith("file://"):
        s = s[len("file://"):]
    if "://" not in s:
        return os.path.abspath(os.path.expanduser(s))
    proto, rest = s.split("://", 1)
    rest = rest.rstrip("/")
    return f"{proto}://{rest}"


def is_local(url: str) -> bool:
    """True for plain paths and ``file://`` URLs (where POSIX guarantees apply)."""
    s = os.fspath(url)
    return "://" not in s or s.startswith("file://")


def join(url: str, *parts: str) -> str:
    """Child URL; ``parts`` may contain ``/`` but must not be absolute."""
    base = normalize_url(url)
    tail = "/".join(p.strip("/") for p in parts if p)
    if not tail:
        return base
    if is_local(base):
        return os.path.join(base, *tail.split("/"))
    return f"{base}/{tail}"


# Object-store filesystems (s3fs, gcsfs, adlfs) cache directory listings per process by default: a
# reader that listed ``commits/`` once would never see markers another process publishes later, and
# ``exists`` answers from that cache. A store is shared between processes and machines, so every
# listing goes to the server.
_NO_LISTINGS_CACHE = {"use_listings_cache": False}


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for a store URL (credentials never: those come from the environment)."""
    proto = normalize_url(url).split("://", 1)[0]
    return {} if proto in ("memory", "file") else dict(_NO_LISTINGS_CACHE)


def get_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path inside it) for a URL."""
    url = normalize_url(url)
    fs, path = url_to_fs(url, **storage_options(url))
    return fs, path


def exists(url: str) -> bool:
    url = normalize_url(url)
    if is_local(url):
        return os.path.exists(url)
    fs, path = get_fs(url)
    return bool(fs.exists(path))


def isdir(url: str) -> bool:
    url = normalize_url(url)
    if is_local(url):
        return os.path.isdir(url)
    fs, path = get_fs(url)
    return bool(fs.isdir(path))


def makedirs(url: str) -> None:
    """Create a directory and its parents (a no-op on object stores without directories)."""
    url = normalize_url(url)
    if is_local(url):
        os.makedirs(url, exist_ok=True)
        return
    fs, path = get_fs(url)
    fs.makedirs(path, exist_ok=True)


def listdir(url: str) -> list[str]:
    """Sorted entry names directly under ``url``; missing directory → empty list; temp files hidden."""
    url = normalize_url(url)
    if is_local(url):
        try:
            names = os.listdir(url)
        except (FileNotFoundError, NotADirectoryError):
            return []
    else:
        fs, path = get_fs(url)
        try:
            entries = fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        names = [e.rstrip("/").rsplit("/", 1)[-1] for e in entries]
    return sorted(n for n in names if _TMP_MARK not in n)


def rm(url: str, recursive: bool = True, missing_ok: bool = True) -> None:
    """Remove a file or (recursively) a directory."""
    url = normalize_url(url)
    if is_local(url):
        import shutil

        if os.path.isdir(url) and not os.path.islink(url):
            if not recursive:
                os.rmdir(url)
            else:
                shutil.rmtree(url)
        elif os.path.lexists(url):
            os.unlink(url)
        elif not missing_ok:
            raise FileNotFoundError(url)
        return
    fs, path = get_fs(url)
    if not fs.exists(path):
        if not missing_ok:
            raise FileNotFoundError(url)
        return
    fs.rm(path, recursive=recursive)


def read_bytes(url: str) -> bytes:
    """Whole-file read; raises FileNotFoundError when absent."""
    url = normalize_url(url)
    if is_local(url):
        try:
            with open(url, "rb") as f:
                return f.read()
        except NotADirectoryError as exc:  # a parent is a file: the target cannot exist
            raise FileNotFoundError(url) from exc
    fs, path = get_fs(url)
    return bytes(fs.cat_file(path))


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(url: str, data: bytes) -> None:
    """Publish ``data`` at ``url`` so readers see either the old file or the whole new one.

    Local: write a uniquely named temp file in the same directory, fsync it,
    ``os.replace`` it over the target, fsync the directory (so the rename survives
    a power loss). Other URLs: one ``pipe`` (a single PUT), which object stores
    apply atomically.
    """
    url = normalize_url(url)
    if is_local(url):
        parent = os.path.dirname(url)
        os.makedirs(parent, exist_ok=True)
        tmp = os.path.join(parent, f".{os.path.basename(url)}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, url)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        _fsync_dir(parent)
        return
    fs, path = get_fs(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        try:
            fs.makedirs(parent, exist_ok=True)
        except Exception:  # object stores have no directories; makedirs may be unsupported
            pass
    fs.pipe_file(path, bytes(data))


def _is_s3(fsobj: fsspec.AbstractFileSystem) -> bool:
    protos = fsobj.protocol if isinstance(fsobj.protocol, (tuple, list)) else (fsobj.protocol,)
    return bool({"s3", "s3a"} & set(protos))


def exclusive_create_is_atomic(url: str) -> bool:
    """Whether :func:`create_exclusive` is a true create-if-absent at ``url``.

    Local paths (``O_EXCL``), S3 (one PUT with ``If-None-Match: *``: AWS S3 since 2024, MinIO,
    moto) and ``memory://`` (one process) are; other fsspec backends get fsspec's generic
    check-then-write, which two machines can both pass.
    """
    url = normalize_url(url)
    if is_local(url):
        return True
    fsobj, _ = get_fs(url)
    return _is_s3(fsobj) or "memory" in (fsobj.protocol if isinstance(fsobj.protocol, (tuple, list))
                                         else (fsobj.protocol,))


def create_exclusive(url: str, data: bytes) -> str | None:
    """Write ``data`` at ``url`` only if nothing is there; None when something already is.

    Returns a version tag of the new object on success: its ETag on S3 (for
    :func:`replace_if_match`), ``""`` elsewhere. See :func:`exclusive_create_is_atomic`.
    """
    url = normalize_url(url)
    if is_local(url):
        os.makedirs(os.path.dirname(url), exist_ok=True)
        try:
            fd = os.open(url, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        return ""
    fsobj, path = get_fs(url)
    try:
        out = fsobj.pipe_file(path, bytes(data), mode="create")
    except FileExistsError:
        return None
    return str(out.get("ETag", "")) if isinstance(out, dict) else ""


def replace_if_match(url: str, data: bytes, tag: str) -> str | None:
    """S3 only: overwrite ``url`` only while its ETag is still ``tag`` (one PUT with ``If-Match``).

    Returns the new ETag, or None when the object was replaced or deleted meanwhile
    (so a holder that lost a lock can never overwrite the new holder's object).
    """
    url = normalize_url(url)
    fsobj, path = get_fs(url)
    if is_local(url) or not _is_s3(fsobj):
        raise NotImplementedError(f"conditional overwrite needs an S3 URL, got {url}")
    try:
        out = fsobj.pipe_file(path, bytes(data), IfMatch=tag)
    except (FileNotFoundError, FileExistsError):
        return None
    except OSError as exc:  # s3fs maps 412 PreconditionFailed (If-Match) to OSError(EINVAL)
        if "pre-condition" in str(exc).lower() or "precondition" in str(exc).lower():
            return None
        raise
    return str(out.get("ETag", ""))


def modified_age(url: str) -> float | None:
    """Seconds since ``url`` was last written, None when absent or unknown."""
    import time

    url = normalize_url(url)
    try:
        if is_local(url):
            return time.time() - os.path.getmtime(url)
        fsobj, path = get_fs(url)
        return time.time() - fsobj.modified(path).timestamp()
    except Exception:
        return None


def read_json(url: str) -> Any:
    """Parse a JSON file; FileNotFoundError when absent, StoreError when corrupt."""
    raw = read_bytes(url)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"corrupt JSON file {url}: {exc}") from exc


def write_json_atomic(url: str, obj: Any) -> None:
    """Write canonical (sorted keys, indented) JSON atomically."""
    atomic_write_bytes(url, (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode("utf-8"))


def check_writable(url: str) -> None:
    """Fail fast with StoreError when ``url`` cannot be created or written (before any real work)."""
    url = normalize_url(url)
    probe = join(url, f".probe{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        makedirs(url)
        atomic_write_bytes(probe, b"ok")
        rm(probe)
    except (OSError, PermissionError, NotImplementedError, ValueError) as exc:
        raise StoreError(f"store location {url} is not writable: {exc}") from exc


def zarr_store(url: str, read_only: bool = False):
    """A zarr v3 store for ``url``: ``LocalStore`` for local paths, ``FsspecStore`` otherwise.

    Why not always fsspec: LocalStore writes every chunk atomically (temp + rename)
    and skips fsspec's overhead; FsspecStore is what remote and in-memory URLs need.
    """
    import zarr.storage

    url = normalize_url(url)
    if is_local(url):
        if not read_only:
            os.makedirs(url, exist_ok=True)
        return zarr.storage.LocalStore(url, read_only=read_only)
    return zarr.storage.FsspecStore.from_url(url, read_only=read_only, storage_options=storage_options(url) or None)
