"""Per-file bounds: each source file is processed under a time limit and a memory limit.

Why: a crafted or damaged file must never stop or hang a run (a header that
claims 10^10 samples, a FIF split naming itself as its next part, a compressed
``.set`` that inflates to gigabytes, a reader stuck in a loop). Checks of header
sizes catch the known cases early with a precise reason; these limits catch the
rest, whatever the reader.

How: :func:`run_bounded` forks a child process per file (``os.fork``: the child
shares the parent's imported modules and open store, so it costs a few ms, not
an interpreter start). The child caps its address space (``RLIMIT_AS``) at what
it already maps + the file's size (EDF records are memory-mapped) + the memory
budget, runs the work and sends the small result dict back through a pipe. The
parent waits at most ``timeout_s`` and kills the child past it. A file that
goes over either bound, or whose reader crashes the child, is quarantined with
a reason saying so.

Defaults (:class:`FileLimits`): 600 s; memory = min(8 GiB, 60 % of RAM / workers);
a sampling-rate ceiling of 20 kHz (filter design and memory grow with the rate).
Without ``os.fork`` (not Linux/macOS) or with ``isolate=False`` the work runs in
the calling process and only MemoryError is caught (no time limit).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import stat as stat_mod
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

GIB = 1024**3
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MAX_SFREQ = 20_000.0
MAX_MEMORY_DEFAULT = 8 * GIB


def machine_memory() -> int:
    """Physical memory of this machine in bytes (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def default_memory_bytes(workers: int = 1) -> int:
    """min(8 GiB, 60 % of RAM / workers), at least 512 MiB."""
    ram = machine_memory()
    share = int(0.6 * ram / max(int(workers), 1)) if ram else MAX_MEMORY_DEFAULT
    return max(min(MAX_MEMORY_DEFAULT, share), 512 * 1024**2)


@dataclass(frozen=True)
class FileLimits:
    """Bounds on processing one source file (see module docstring)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_bytes: int = 0  # 0: default_memory_bytes()
    max_sfreq: float = DEFAULT_MAX_SFREQ
    isolate: bool = True  # False: run in the calling process (no time limit, no address-space cap)

    @property
    def memory(self) -> int:
        return int(self.memory_bytes) or default_memory_bytes()


def gib(n: float) -> str:
    """``n`` bytes as a short human figure (``1.5 GiB``, ``300 MiB``)."""
    if n >= 100 * GIB:
        return f"{n / GIB:,.0f} GiB"
    return f"{n / GIB:.3g} GiB" if n >= GIB else f"{n / 1024**2:.3g} MiB"


class LimitExceeded(Exception):
    """The child went over a bound or died; ``reason`` says which, in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _address_space() -> int:
    """Bytes of address space this process maps now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return 0


def cap_memory(budget: int, mapped: int = 0) -> None:
    """Cap this process's address space at its current size + ``mapped`` + ``budget`` (best effort)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    now = _address_space()
    if not now:
        return
    want = now + int(mapped) + int(budget)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def run_bounded(fn: Callable[[], Any], limits: FileLimits, mapped: int = 0) -> Any:
    """``fn()`` in a forked child under ``limits``; its return value (picklable, small).

    An exception ``fn`` raises is re-raised here. Going over the time limit, or
    the child dying without an answer (killed for memory, a crashing reader),
    raises :class:`LimitExceeded` with the reason.
    """
    if not limits.isolate or not hasattr(os, "fork"):
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        try:
            os.close(r)
            cap_memory(limits.memory, mapped)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
                try:
                    payload = pickle.dumps((False, exc))
                except Exception:  # noqa: BLE001 - an unpicklable exception: its text
                    payload = pickle.dumps((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(0)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + limits.timeout_s
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], min(left, 60.0))
            if not ready:
                continue
            data = os.read(r, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        raise LimitExceeded(f"processing took longer than the per-file time limit of {limits.timeout_s:g} s "
                            "(stopped)")
    if not chunks:
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            why = ("it was killed, most likely for using too much memory" if sig == signal.SIGKILL
                   else f"the reader crashed ({_signal_name(sig)})")
            raise LimitExceeded(f"reading the file failed: {why}")
        raise LimitExceeded(f"reading the file failed: the worker process ended without an answer "
                            f"(exit status {os.WEXITSTATUS(status)})")
    ok, value = pickle.loads(b"".join(chunks))
    if not ok:
        raise value
    return value


_NOT_REGULAR = ((stat_mod.S_ISFIFO, "a named pipe"), (stat_mod.S_ISCHR, "a character device"),
                (stat_mod.S_ISBLK, "a block device"), (stat_mod.S_ISSOCK, "a socket"),
                (stat_mod.S_ISDIR, "a directory"))


def not_regular(mode: int) -> str | None:
    """What a stat mode is when it is not a regular file (``"a named pipe"``...), None for a regular file."""
    if stat_mod.S_ISREG(mode):
        return None
    return next((what for test, what in _NOT_REGULAR if test(mode)), "not a regular file")
