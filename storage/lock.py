"""An inter-process lock on a store directory, with stale-lock detection.

Why: two ``neurolm ingest`` runs on the same store would both rewrite the tables
and race on the version pointer. A plain lock file is not enough, because a run
that is killed (OOM killer, ``kill -9``, a lost node) never removes it and would
block the store forever. So the lock file records who holds it and a heartbeat:

``<url>/.lock`` (JSON): ``pid``, ``host``, ``pid_started`` (process start time, to
survive pid reuse), ``owner`` (e.g. a run ID), ``started``, ``heartbeat``, ``token``.

A background thread refreshes ``heartbeat`` every ``heartbeat_s``. A waiting
process breaks the lock as *stale* when the holder's pid is dead on this host, or
when the heartbeat is older than ``stale_after_s`` (holders on other hosts). Any
other holder makes it wait up to ``timeout_s`` and then raise ``StoreError``.

Generic: any store (token corpus, checkpoint directory) can use it with its own
directory URL and ``lock_name``. Local paths use ``O_CREAT|O_EXCL`` (atomic on
POSIX, including NFSv3+); other fsspec URLs are best effort (write, then read back
and check the token), since object stores have no exclusive create.
Not re-entrant: a process that takes the same lock twice waits for itself.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from neurolm.errors import StoreError
from storage import fs

log = logging.getLogger(__name__)


def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _proc_started(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process on this host, and the same process if ``started`` is known."""
    try:
        import psutil

        try:
            p = psutil.Process(pid)
            if p.status() == psutil.STATUS_ZOMBIE:
                return False
            if started is not None and abs(p.create_time() - started) > 1.0:
                return False  # the pid was reused by another process
            return True
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:
            return True
    except ImportError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class StoreLock:
    """Context manager: ``with StoreLock(url, "run 42"): ...`` holds ``<url>/<lock_name>``.

    ``timeout_s``: how long to wait for a live holder; ``stale_after_s``: heartbeat
    age after which a holder is presumed dead; ``heartbeat_s``: refresh period.
    """

    def __init__(
        self,
        url: str,
        owner_label: str = "",
        *,
        timeout_s: float = 30.0,
        stale_after_s: float = 120.0,
        heartbeat_s: float = 10.0,
        poll_s: float = 0.2,
        lock_name: str = ".lock",
    ) -> None:
        self.url = fs.normalize_url(url)
        self.lock_url = fs.join(self.url, lock_name)
        self.owner_label = owner_label
        self.timeout_s = float(timeout_s)
        self.stale_after_s = float(stale_after_s)
        self.heartbeat_s = float(heartbeat_s)
        self.poll_s = float(poll_s)
        self.token = uuid.uuid4().hex
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._info: dict[str, Any] = {}

    # -- public ---------------------------------------------------------------
    @property
    def held(self) -> bool:
        return self._held

    def acquire(self) -> None:
        """Take the lock, breaking a stale one; StoreError after ``timeout_s`` of a live holder."""
        if self._held:
            raise RuntimeError("StoreLock is not re-entrant")
        fs.makedirs(self.url)
        deadline = _now() + self.timeout_s
        while True:
            if self._try_create():
                self._held = True
                self._start_heartbeat()
                return
            holder = self.read_holder()
            if holder is None:
                continue  # released between our attempt and the read: retry at once
            reason = self._stale_reason(holder)
            if reason:
                log.warning("breaking stale lock %s (%s): %s", self.lock_url, reason, holder)
                self._break(holder)
                continue
            if _now() >= deadline:
                raise StoreError(
                    f"store is locked by pid {holder.get('pid')} on host {holder.get('host')} "
                    f"since {holder.get('started_iso', '?')} (run ID {holder.get('owner') or '?'}); "
                    f"lock file {self.lock_url}"
                )
            time.sleep(self.poll_s)

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still ours."""
        if not self._held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        holder = self.read_holder()
        if holder is not None and holder.get("token") == self.token:
            fs.rm(self.lock_url)
        elif holder is not None:
            log.warning("lock %s was taken over by %s while held; leaving it", self.lock_url, holder)
        self._held = False

    def read_holder(self) -> dict[str, Any] | None:
        """The current lock file content, or None when unlocked (or unreadable mid-write)."""
        try:
            data = fs.read_bytes(self.lock_url)
        except (FileNotFoundError, IsADirectoryError):
            return None
        try:
            obj = json.loads(data.decode("utf-8"))
            return obj if isinstance(obj, dict) else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}  # empty or torn file: treated by its age below

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- internals ------------------------------------------------------------
    def _payload(self) -> bytes:
        t = _now()
        if not self._info:
            pid = os.getpid()
            self._info = {
                "pid": pid,
                "host": socket.gethostname(),
                "pid_started": _proc_started(pid),
                "owner": self.owner_label,
                "started": t,
                "started_iso": _iso(t),
                "token": self.token,
            }
        return json.dumps({**self._info, "heartbeat": t, "heartbeat_iso": _iso(t)}, sort_keys=True).encode()

    def _try_create(self) -> bool:
        payload = self._payload()
        if fs.is_local(self.lock_url):
            try:
                fd = os.open(self.lock_url, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
        # Best effort on object stores: create if absent, then confirm we won the race.
        if fs.exists(self.lock_url):
            return False
        fs.atomic_write_bytes(self.lock_url, payload)
        time.sleep(min(0.05, self.poll_s))
        holder = self.read_holder()
        return bool(holder) and holder.get("token") == self.token

    def _stale_reason(self, holder: dict[str, Any]) -> str | None:
        if not holder:
            # Empty/torn file: stale only if it is old (a creator may be mid-write).
            age = self._file_age()
            return f"unreadable lock file {age:.0f}s old" if age is not None and age > self.stale_after_s else None
        pid, host = holder.get("pid"), holder.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid, holder.get("pid_started")):
            return f"pid {pid} is dead on this host"
        hb = holder.get("heartbeat")
        if isinstance(hb, (int, float)) and _now() - hb > self.stale_after_s:
            return f"heartbeat {(_now() - hb):.0f}s old (> {self.stale_after_s:.0f}s)"
        return None

    def _file_age(self) -> float | None:
        try:
            if fs.is_local(self.lock_url):
                return _now() - os.path.getmtime(self.lock_url)
            f, p = fs.get_fs(self.lock_url)
            m = f.modified(p)
            return _now() - m.timestamp()
        except Exception:
            return None

    def _break(self, holder: dict[str, Any]) -> None:
        """Remove a stale lock, guarded so two waiters cannot both break and one delete the other's new lock."""
        guard_url = self.lock_url + ".break"
        if fs.is_local(guard_url):
            try:
                fd = os.open(guard_url, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    if _now() - os.path.getmtime(guard_url) > 30:
                        os.unlink(guard_url)  # a breaker died mid-break
                except OSError:
                    pass
                time.sleep(self.poll_s)
                return
            os.close(fd)
        try:
            current = self.read_holder()
            if current is not None and current.get("token") == holder.get("token"):
                fs.rm(self.lock_url)
        finally:
            if fs.is_local(guard_url):
                fs.rm(guard_url)

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_s):
                try:
                    holder = self.read_holder()
                    if holder is None or holder.get("token") != self.token:
                        log.error("lock %s lost (now held by %s)", self.lock_url, holder)
                        return
                    fs.atomic_write_bytes(self.lock_url, self._payload())
                except Exception as exc:  # keep beating; a transient FS error must not kill the run
                    log.warning("lock heartbeat failed for %s: %s", self.lock_url, exc)

        self._thread = threading.Thread(target=beat, name=f"StoreLock-heartbeat:{self.lock_url}", daemon=True)
        self._thread.start()
