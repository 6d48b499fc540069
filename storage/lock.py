"""An inter-process lock on a store directory, with stale-lock detection.

Why: two ``neurolm ingest`` runs on the same store would both rewrite the tables
and race on the version pointer. A plain lock file is not enough, because a run
that is killed (OOM killer, ``kill -9``, a lost node) never removes it and would
block the store forever. So the lock file records who holds it and a heartbeat:

``<url>/.lock`` (JSON): ``pid``, ``host`` (hostname), ``boot_id`` (the kernel's boot
id) and ``pid_ns`` (the PID namespace) — together the holder's *machine identity* —
``pid_started`` (process start time, to survive pid reuse), ``owner`` (e.g. a run
ID), ``started``, ``token``, ``heartbeat``.

A background thread refreshes ``heartbeat`` every ``heartbeat_s``. When may a waiting
process break the lock?

- Holder on *this machine* (same hostname, boot id and PID namespace): only when its
  pid is dead (or reused by another process). A live holder is never broken, however
  old its heartbeat: a process stopped with Ctrl-Z or a paused VM is alive, and it
  keeps the lock until it resumes and finishes.
- Holder in *another PID namespace or on another host* (a container with the same
  hostname, a cluster node): its pid means nothing here, so it is presumed alive
  until its heartbeat is older than ``stale_after_s`` (default 15 min: "stale for
  long"), and the break message says why it was broken.

A waiter says once (``on_wait``) for whom it waits, then waits up to ``timeout_s``
and raises ``StoreError``. A holder whose lock was nevertheless taken (its heartbeat
went stale across hosts) must not go on writing: :meth:`StoreLock.check` (and
:func:`check_token` in worker processes, which know only the token) raise
:class:`~neurolm.errors.LockLostError`; the stores call them before every table write
and every commit.

Local paths use ``O_CREAT|O_EXCL`` (atomic on POSIX, including NFSv3+). The holder
keeps the lock file open: it owns the lock while the path still names *its* inode
(checked with one ``stat``), and its heartbeat rewrites that inode in place, so a
holder that lost the lock can never overwrite the new holder's file.

Object stores have no rename and no open file handles, so on S3 the lock is a *lease
object*: it is created with one conditional PUT (``If-None-Match: *``: exactly one of
two racing creators wins, on AWS S3, MinIO and moto), and the heartbeat rewrites it with
``If-Match: <its ETag>``, so a holder whose lease was broken (stale heartbeat) can never
overwrite the new holder's object. Breaking a stale lease goes through a second
conditionally created guard object, like the local ``.break`` file. Liveness across
machines is the heartbeat only (a pid means nothing on another host): a crashed holder
on another machine blocks the store for ``stale_after_s``. Other fsspec backends without
a conditional create (see :func:`storage.fs.exclusive_create_is_atomic`) are best effort:
write, then read back and check the token.
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
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from neurolm.errors import LockLostError, StoreError
from storage import fs

log = logging.getLogger(__name__)

#: Default heartbeat age after which a holder on another host / PID namespace is presumed dead.
STALE_AFTER_S = 900.0


def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


@lru_cache(maxsize=1)
def machine_identity() -> dict[str, str | None]:
    """This process's machine: hostname, kernel boot id and PID namespace (None where the OS has none).

    Two processes can compare pids only when all three are equal: the same hostname
    can name two containers (other PID namespaces) or two nodes (other boot ids).
    """
    try:
        pid_ns: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = None
    return {"host": socket.gethostname(), "boot_id": _read_text("/proc/sys/kernel/random/boot_id"),
            "pid_ns": pid_ns}


def _proc_started(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:
        return None


def pid_alive(pid: int, started: float | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process on this host, and the same process if ``started`` is known.

    A stopped process (SIGSTOP, Ctrl-Z) is alive.
    """
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


def describe_holder(holder: dict[str, Any]) -> str:
    """``run ID X (pid P on host H since T)`` for messages."""
    return (f"run ID {holder.get('owner') or '?'} (pid {holder.get('pid')} on host {holder.get('host')} "
            f"since {holder.get('started_iso', '?')})")


def _parse(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
        return obj if isinstance(obj, dict) else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}  # empty or torn file


def read_lock_file(lock_url: str) -> dict[str, Any] | None:
    """The lock file's content, None when absent, ``{}`` when unreadable (empty, mid-write)."""
    try:
        return _parse(fs.read_bytes(lock_url))
    except (FileNotFoundError, IsADirectoryError):
        return None


def check_token(lock_url: str, token: str) -> None:
    """Raise LockLostError unless the lock file at ``lock_url`` is held with ``token`` (for worker processes)."""
    holder: dict[str, Any] | None = {}
    for _ in range(5):  # an unreadable file is retried: a creator may be mid-write
        holder = read_lock_file(lock_url)
        if holder != {}:
            break
        time.sleep(0.01)
    if holder and holder.get("token") == token:
        return
    who = describe_holder(holder) if holder else "nobody"
    raise LockLostError(f"the store lock {lock_url} was taken from this run (now held by {who}); "
                        "stopping before writing anything more (committed data is kept)")


class StoreLock:
    """Context manager: ``with StoreLock(url, "run 42"): ...`` holds ``<url>/<lock_name>``.

    ``timeout_s``: how long to wait for a live holder; ``stale_after_s``: heartbeat
    age after which a holder on another host or PID namespace is presumed dead;
    ``heartbeat_s``: refresh period; ``on_wait``: gets the one "waiting for ..."
    line (default: this module's logger, at INFO).
    """

    def __init__(
        self,
        url: str,
        owner_label: str = "",
        *,
        timeout_s: float = 30.0,
        stale_after_s: float = STALE_AFTER_S,
        heartbeat_s: float = 10.0,
        poll_s: float = 0.2,
        lock_name: str = ".lock",
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.url = fs.normalize_url(url)
        self.lock_url = fs.join(self.url, lock_name)
        self.owner_label = owner_label
        self.timeout_s = float(timeout_s)
        self.stale_after_s = float(stale_after_s)
        self.heartbeat_s = float(heartbeat_s)
        self.poll_s = float(poll_s)
        self.on_wait = on_wait or log.info
        self.token = uuid.uuid4().hex
        self._held = False
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._info: dict[str, Any] = {}
        self._fd: int | None = None  # local lock file, kept open while held
        self._inode: tuple[int, int] | None = None
        self._etag: str | None = None  # S3 lease object: its ETag while held (conditional heartbeat)

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
        said: str | None = None
        while True:
            if self._try_create():
                self._held, self._lost = True, None
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
            if holder and holder.get("token") != said:
                said = holder.get("token")
                self.on_wait(f"waiting up to {self.timeout_s:.0f}s for the store lock {self.lock_url}, "
                             f"held by {describe_holder(holder)}")
            if _now() >= deadline:
                raise StoreError(
                    f"store is locked by pid {holder.get('pid')} on host {holder.get('host')} "
                    f"since {holder.get('started_iso', '?')} (run ID {holder.get('owner') or '?'}); "
                    f"lock file {self.lock_url}{self._why_alive(holder)}"
                )
            time.sleep(self.poll_s)

    def check(self) -> None:
        """Raise LockLostError unless this object still holds the lock (one ``stat`` for local stores)."""
        if not self._held:
            raise LockLostError(f"the store lock {self.lock_url} is not held by this run")
        if self._lost is None:
            if self._inode is not None:
                try:
                    st = os.stat(self.lock_url)
                    ours = (st.st_dev, st.st_ino) == self._inode
                except OSError:
                    ours = False
                if not ours:
                    holder = self.read_holder()
                    self._lost = describe_holder(holder) if holder else "nobody"
            else:
                holder = self.read_holder()
                if holder is None or (holder and holder.get("token") != self.token):
                    self._lost = describe_holder(holder) if holder else "nobody"
        if self._lost == "nobody":  # seen between a breaker's delete and its create: name the new holder if any
            holder = self.read_holder()
            if holder:
                self._lost = describe_holder(holder)
        if self._lost is not None:
            raise LockLostError(f"the store lock {self.lock_url} was taken from this run (now held by "
                                f"{self._lost}); stopping before writing anything more (committed data is kept)")

    def release(self) -> None:
        """Stop the heartbeat and remove the lock file if it is still ours."""
        if not self._held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.check()
            fs.rm(self.lock_url)
        except LockLostError:
            log.warning("lock %s was taken over by %s while held; leaving it", self.lock_url, self.read_holder())
        finally:
            if self._fd is not None:
                os.close(self._fd)
            self._fd, self._inode, self._etag, self._held = None, None, None, False

    def read_holder(self) -> dict[str, Any] | None:
        """The current lock file content, or None when unlocked (``{}`` when unreadable mid-write)."""
        return read_lock_file(self.lock_url)

    def __enter__(self) -> "StoreLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- internals ------------------------------------------------------------
    def _payload(self) -> bytes:
        """The lock file: fixed fields first (token included), then the fixed-width heartbeat.

        The length never changes while held, so the in-place heartbeat rewrite leaves
        every field but the heartbeat byte-identical even to a reader racing with it.
        """
        t = _now()
        if not self._info:
            pid = os.getpid()
            self._info = {"token": self.token, "pid": pid, **machine_identity(), "pid_started": _proc_started(pid),
                          "owner": self.owner_label, "started": t, "started_iso": _iso(t)}
        head = json.dumps(self._info)[:-1]
        return f'{head}, "heartbeat": {t:17.3f}, "heartbeat_iso": "{_iso(t)}"}}\n'.encode()

    def _try_create(self) -> bool:
        payload = self._payload()
        if fs.is_local(self.lock_url):
            try:
                fd = os.open(self.lock_url, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, payload)
                os.fsync(fd)
                st = os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._inode = fd, (st.st_dev, st.st_ino)
            return True
        tag = fs.create_exclusive(self.lock_url, payload)  # S3: one PUT with If-None-Match: *
        if tag is None:
            return False
        if fs.exclusive_create_is_atomic(self.lock_url):
            self._etag = tag or None
            return True
        # Best effort elsewhere (fsspec's check-then-write): confirm we won the race.
        time.sleep(min(0.05, self.poll_s))
        holder = self.read_holder()
        return bool(holder) and holder.get("token") == self.token

    def _stale_reason(self, holder: dict[str, Any]) -> str | None:
        if not holder:
            # Empty/torn file: stale only if it is old (a creator may be mid-write).
            age = self._file_age()
            return f"unreadable lock file {age:.0f}s old" if age is not None and age > self.stale_after_s else None
        me = machine_identity()
        pid = holder.get("pid")
        same_machine = all(holder.get(k) == me[k] for k in ("host", "boot_id", "pid_ns"))
        if same_machine and isinstance(pid, int):
            if not pid_alive(pid, holder.get("pid_started")):
                return f"pid {pid} is dead on this host"
            return None  # a live holder on this machine is never broken, however old its heartbeat
        hb = holder.get("heartbeat")
        if isinstance(hb, (int, float)) and _now() - hb > self.stale_after_s:
            if holder.get("host") != me["host"] or holder.get("boot_id") != me["boot_id"]:
                where = f"on another host ({holder.get('host')})"
            else:
                where = f"in another PID namespace ({holder.get('pid_ns')}) of this host"
            return (f"holder pid {pid} is {where}, where its pid cannot be checked, and its heartbeat is "
                    f"{(_now() - hb):.0f}s old (> {self.stale_after_s:.0f}s): presumed dead")
        return None

    def _why_alive(self, holder: dict[str, Any]) -> str:
        """Why the holder counts as alive, for the timeout message."""
        if not holder:
            return ""
        me = machine_identity()
        if all(holder.get(k) == me[k] for k in ("host", "boot_id", "pid_ns")):
            return " (its process is alive on this machine; a live holder is never broken, even if stopped)"
        hb = holder.get("heartbeat")
        age = f"{_now() - hb:.0f}s" if isinstance(hb, (int, float)) else "unknown"
        return (f" (holder on another host or PID namespace: presumed alive until its heartbeat is "
                f"{self.stale_after_s:.0f}s old; it is {age} old)")

    def _file_age(self) -> float | None:
        return fs.modified_age(self.lock_url)

    def _break(self, holder: dict[str, Any]) -> None:
        """Remove a stale lock, guarded so two waiters cannot both break and one delete the other's new lock."""
        guard_url = self.lock_url + ".break"
        if fs.create_exclusive(guard_url, self.token.encode()) is None:
            age = fs.modified_age(guard_url)
            if age is not None and age > 30:
                fs.rm(guard_url)  # a breaker died mid-break
            time.sleep(self.poll_s)
            return
        try:
            current = self.read_holder()
            if current is not None and current.get("token") == holder.get("token"):
                fs.rm(self.lock_url)
        finally:
            fs.rm(guard_url)

    def _beat_once(self) -> bool:
        """Refresh the heartbeat if the lock is still ours; False (and ``_lost`` set) when it was taken."""
        if self._fd is not None:
            try:
                self.check()
            except LockLostError:
                return False
            payload = self._payload()
            os.pwrite(self._fd, payload, 0)  # our own inode: can never touch another holder's file
            return True
        if self._etag is not None:  # S3 lease: rewrite only our own object (If-Match)
            new = fs.replace_if_match(self.lock_url, self._payload(), self._etag)
            if new is None:
                holder = self.read_holder()
                self._lost = describe_holder(holder) if holder else "nobody"
                return False
            self._etag = new
            return True
        holder = self.read_holder()
        if holder is None or (holder and holder.get("token") != self.token):
            self._lost = describe_holder(holder) if holder else "nobody"
            return False
        fs.atomic_write_bytes(self.lock_url, self._payload())
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_s):
                try:
                    if not self._beat_once():
                        log.error("lock %s lost (now held by %s): this run's next write raises LockLostError",
                                  self.lock_url, self._lost)
                        return
                except Exception as exc:  # keep beating; a transient FS error must not kill the run
                    log.warning("lock heartbeat failed for %s: %s", self.lock_url, exc)

        self._thread = threading.Thread(target=beat, name=f"StoreLock-heartbeat:{self.lock_url}", daemon=True)
        self._thread.start()
