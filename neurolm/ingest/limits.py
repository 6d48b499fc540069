"""Per-file bounds: each source file is processed under a time limit and a memory limit.

Why: a crafted or damaged file must never stop or hang a run (a header that
claims 10^10 samples, a FIF split naming itself as its next part, a compressed
``.set`` that inflates to gigabytes, a reader stuck in a loop). Checks of header
sizes catch the known cases early with a precise reason; these limits catch the
rest, whatever the reader.

How: :func:`map_bounded` forks one child process per batch (``os.fork``: the
child shares the parent's imported modules and open store, so it costs
milliseconds, not an interpreter start). The child caps its address space
(``RLIMIT_AS``) at what it already maps + the largest file's size (EDF records
are memory-mapped) + the memory budget, processes the files one after another
and sends each small result dict back through a pipe as it ends. The parent
gives each file at most ``timeout_s`` and kills the child past it. A file that
goes over either bound, or whose reader crashes the child, is quarantined with
a reason saying so, and a fresh child goes on with the files after it.

Defaults (:class:`FileLimits`): 600 s; memory = min(8 GiB, 60 % of RAM / workers);
a sampling-rate ceiling of 20 kHz (filter design and memory grow with the rate).
Without ``os.fork`` (not Linux/macOS) or with ``isolate=False`` the work runs in
the calling process and only MemoryError is caught (no time limit).

Overlap (:class:`Staged`): an item function in stages -- ``read`` (the source file),
``prepare`` (compute from it) and ``finish`` (write our own results) -- lets the child
read item k+1 on a reader thread and write item k-1 on a writer thread while item k is
computed, so reading, compression and writes overlap with filtering. The child announces
each item as it starts reading it; a time limit or a death is blamed on the item announced
last (reading a hostile file is what goes wrong) when no earlier item is still in flight;
when one is, nobody is blamed yet: the fresh child redoes those items one at a time,
without overlap, so the limit falls on the item that really went over it (a file that
hangs its reader is then stopped twice: 2 x the time limit).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import select
import signal
import stat as stat_mod
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from neurolm.errors import BadInputError, LockLostError, StoreError, describe

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


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


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
    overlap: bool = True  # one file's write overlaps the next file's read (a second core per worker helps)

    @property
    def memory(self) -> int:
        return int(self.memory_bytes) or default_memory_bytes()


def gib(n: float) -> str:
    """``n`` bytes as a short human figure (``1.5 GiB``, ``300 MiB``)."""
    if n >= 100 * GIB:
        return f"{n / GIB:,.0f} GiB"
    return f"{n / GIB:.3g} GiB" if n >= GIB else f"{n / 1024**2:.3g} MiB"


@dataclass(frozen=True)
class Staged:
    """An item function in stages that :func:`map_bounded` overlaps (see module docstring).

    ``read(item)`` (optional) reads the source; ``prepare(token)`` computes from what was read;
    ``finish(token)`` returns the item's value (writing what ``prepare`` made). Called directly,
    it is ``finish(prepare(read(item)))``.
    """

    prepare: Callable[[Any], Any]
    finish: Callable[[Any], Any]
    read: Callable[[Any], Any] | None = None

    def __call__(self, item: Any) -> Any:
        return self.finish(self.prepare(self.read(item) if self.read is not None else item))


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


def cap_memory(budget: int, mapped: int = 0, base: int | None = None) -> int:
    """Cap this process's address space at ``base`` (default: its current size) + ``mapped`` + ``budget``.

    Best effort (no-op where ``RLIMIT_AS`` or ``/proc`` is missing); returns the base used, so a child
    can re-cap for each file from the same base.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    base = _address_space() if base is None else base
    if not base:
        return 0
    want = base + int(mapped) + int(budget)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))
    return base


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if isinstance(obj, (tuple, set, frozenset)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


def _send(w: int, ok: bool, value: Any) -> None:
    """One JSON frame: the child reads hostile files, so what it sends is data, never a pickle."""
    if ok:
        frame = {"ok": True, "value": value}
    else:  # an exception: its kind and text (the parent raises the matching neurolm error)
        frame = {"ok": False, "type": type(value).__name__, "message": str(value),
                 "lock_lost": isinstance(value, LockLostError), "store": isinstance(value, StoreError)}
    try:
        payload = json.dumps(frame, default=_json_default).encode()
    except (TypeError, ValueError) as exc:
        payload = json.dumps({"ok": False, "type": "TypeError", "message": f"result not JSON-able: {exc}",
                              "lock_lost": False, "store": False}).encode()
    _write_frame(w, payload)


def _send_frame(w: int, frame: dict) -> None:
    _write_frame(w, json.dumps(frame).encode())


def _write_frame(w: int, payload: bytes) -> None:
    view = memoryview(struct.pack("<Q", len(payload)) + payload)
    while view:
        view = view[os.write(w, view):]


def _child(w: int, fn: Callable[[Any], Any], items: Sequence[Any], limits: FileLimits,
           mapped: Sequence[int], overlap: bool = True) -> None:
    """The forked child: ``fn`` on each item in turn, each result framed onto ``w``; never returns.

    Each item is announced (``{"started": i}``) before its work starts. A :class:`Staged` ``fn``
    (with ``overlap``) runs as a pipeline instead: :func:`_pipeline`.
    """
    try:
        import faulthandler

        faulthandler.disable()  # a crashing reader is reported by the parent as a reason, not a stack dump
        if isinstance(fn, Staged) and overlap:
            _pipeline(w, fn, items, limits, mapped)
            return
        base = None
        for i, (item, size) in enumerate(zip(items, mapped)):
            _send_frame(w, {"started": i})
            base = cap_memory(limits.memory, size, base)  # from the address space at fork, for every file
            try:
                value = fn(item)
            except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
                _send(w, False, exc)
                break
            _send(w, True, value)
    finally:
        os._exit(0)


def _pipeline(w: int, staged: Staged, items: Sequence[Any], limits: FileLimits, mapped: Sequence[int]) -> None:
    """Item i+1 is read (reader thread) while item i is prepared (this thread) and item i-1 finished
    (writer thread); results are sent in order. An item is announced when its reading starts, and its
    address-space cap is set then, from the space mapped at that moment (the items still in flight hold
    their arrays), so the budget stays the budget of the file being read."""
    reader = ThreadPoolExecutor(1, thread_name_prefix="neurolm-read")
    writer = ThreadPoolExecutor(1, thread_name_prefix="neurolm-finish")
    read = staged.read or _same

    def start(i: int) -> Future:
        _send_frame(w, {"started": i})
        cap_memory(limits.memory, mapped[i])
        return reader.submit(read, items[i])

    pending: Future | None = None
    ahead = start(0) if items else None
    for i in range(len(items)):
        try:
            token = ahead.result()
            if i + 1 < len(items):
                ahead = start(i + 1)
            token = staged.prepare(token)
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
            if pending is None or _flush(w, pending):
                _send(w, False, exc)
            return
        if pending is not None and not _flush(w, pending):
            return
        pending = writer.submit(staged.finish, token)
    if pending is not None:
        _flush(w, pending)


def _same(item: Any) -> Any:
    return item


def _flush(w: int, pending: Future) -> bool:
    """Send the result of an overlapped ``finish`` (waiting for it); False when it raised."""
    try:
        value = pending.result()
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
        _send(w, False, exc)
        return False
    _send(w, True, value)
    return True


_BUILTIN_ERRORS = {name: obj for name, obj in vars(builtins).items()
                   if isinstance(obj, type) and issubclass(obj, Exception)}


def _error_from(msg: dict) -> Exception:
    """The parent's exception for a child's error frame: a neurolm store error, the same built-in
    exception type (MemoryError, ValueError...), else a RuntimeError naming the type. Never unpickled."""
    if msg["lock_lost"]:
        return LockLostError(msg["message"])
    if msg["store"]:
        return StoreError(msg["message"])
    cls = _BUILTIN_ERRORS.get(msg["type"])
    if cls is not None:
        try:
            return cls(msg["message"])
        except TypeError:  # a built-in that takes other arguments (UnicodeDecodeError...)
            pass
    return RuntimeError(f"{msg['type']}: {msg['message']}")


class _Frames:
    """Length-prefixed JSON frames read from a child's pipe, each within a deadline."""

    def __init__(self, fd: int):
        self.fd, self.buf = fd, b""

    def next(self, timeout_s: float) -> bytes | None:
        """The next frame; None at end of file; raises TimeoutError past ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            if len(self.buf) >= 8:
                n = struct.unpack("<Q", self.buf[:8])[0]
                if len(self.buf) >= 8 + n:
                    frame, self.buf = self.buf[8:8 + n], self.buf[8 + n:]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], min(left, 60.0))
            if ready:
                data = os.read(self.fd, 1 << 20)
                if not data:
                    return None
                self.buf += data


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        why = ("it was killed, most likely for using too much memory" if sig == signal.SIGKILL
               else f"the reader crashed ({_signal_name(sig)})")
        return f"reading the file failed: {why}"
    return ("reading the file failed: the worker process ended without an answer "
            f"(exit status {os.WEXITSTATUS(status)})")


def map_bounded(fn: Callable[[Any], Any], items: Sequence[Any], limits: FileLimits,
                on_limit: Callable[[Any, str], Any], mapped: Sequence[int] | None = None) -> list:
    """``[fn(item) for item in items]``, each item under ``limits``, in forked children.

    One child runs the items one after another and sends each result back as it
    ends (one fork per batch, not per file); the parent allows each item
    ``limits.timeout_s`` from its start. An item that goes over it, or whose child dies
    without an answer (killed for memory, a crashing reader), gets ``on_limit(item,
    reason)`` instead, and a fresh child takes the items after it. An exception
    ``fn`` raises is re-raised here. ``mapped[i]``: bytes item ``i`` may map
    beyond the budget (its file's size: EDF records are memory-mapped).
    ``fn`` may be a :class:`Staged`: then, with ``limits.overlap``, the child reads the next item and
    finishes the previous one while it prepares one (module docstring: how a limit is then blamed).
    """
    if not limits.isolate or not hasattr(os, "fork"):
        return [fn(it) for it in items]
    mapped = list(mapped) if mapped is not None else [0] * len(items)
    out: dict[int, Any] = {}
    todo = list(range(len(items)))  # indices without a result, in order
    overlap = limits.overlap  # off once a limit hit while items were in flight: then one at a time, exact blame
    while todo:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _child(w, fn, [items[j] for j in todo], limits, [mapped[j] for j in todo], overlap)
        os.close(w)
        frames, reaped, error = _Frames(r), None, None
        sent = list(todo)  # what this child works on: its frames index this list
        done = 0  # results received from this child (they come in order)
        current: int | None = None  # position in `sent` of the item the child announced last
        deadline = time.monotonic() + limits.timeout_s
        reason: str | None = None
        try:
            while done < len(sent):
                try:
                    frame = frames.next(max(deadline - time.monotonic(), 0.0))
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    reason = f"processing took longer than the per-file time limit of {limits.timeout_s:g} s (stopped)"
                    break
                if frame is None:
                    _, reaped = os.waitpid(pid, 0)
                    reason = _death(reaped)
                    break
                msg = json.loads(frame)
                if "started" in msg:
                    current = int(msg["started"])
                    deadline = time.monotonic() + limits.timeout_s
                    continue
                if not msg["ok"]:
                    error = _error_from(msg)
                    break
                out[sent[done]] = msg["value"]
                done += 1
        finally:
            os.close(r)
            if reaped is None:
                if error is not None or done < len(sent):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        if error is not None:
            raise error
        todo = [j for j in sent if j not in out]
        if reason is not None:
            # the item announced last was being read: to blame, unless an earlier item's finish was running
            # too (then either may be the cause: the next child redoes them one at a time to find out)
            culprit = sent[current] if current is not None and sent[current] in todo else todo[0]
            if overlap and isinstance(fn, Staged) and todo.index(culprit) > 0:
                overlap = False
                continue
            out[culprit] = on_limit(items[culprit], reason)
            todo = [j for j in todo if j != culprit]
    return [out[j] for j in range(len(items))]


def run_bounded(fn: Callable[[], Any], limits: FileLimits, mapped: int = 0) -> Any:
    """``fn()`` in a forked child under ``limits``; raises :class:`LimitExceeded` when it goes over."""
    def over(_item, reason: str):
        raise LimitExceeded(reason)

    return map_bounded(lambda _: fn(), [None], limits, over, [mapped])[0]


@contextlib.contextmanager
def reading(limits: FileLimits) -> Iterator[None]:
    """Exceptions raised while reading a source file are file problems: reasons in words (failure policy:
    :mod:`neurolm.ingest.worker`)."""
    try:
        yield
    except BadInputError:
        raise
    except MemoryError:
        raise BadInputError(f"the file needs more memory than the per-file budget of {gib(limits.memory)}"
                            ": MemoryError") from None
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's
        raise BadInputError(describe(exc)) from None


#: Bytes of working memory per decoded value, by reader: the EDF path decodes float32 straight into the
#: output; MNE reads float64, scales into another float64 array and casts to float32.
_BYTES_PER_VALUE = {"edf": 8, "bdf": 8}
_BYTES_PER_VALUE_MNE = 24


#: A streamed recording (memory bounded by its blocks) may claim up to this many times the per-file
#: budget: 64 GiB of decoded values at the default 8 GiB (24 h x 64 ch at 1 kHz needs 44 GB), so a
#: sparse file claiming months of signal is still refused before a sample is read.
STREAM_CLAIM_FACTOR = 8


def check_bounds(header, positions, limits: FileLimits, streamed: bool = False) -> None:
    """Refuse, before any sample is read, a recording whose header asks for more than the bounds allow.

    ``streamed``: the recording will be read in blocks (its memory does not grow with it), so its
    claim is checked against ``STREAM_CLAIM_FACTOR`` x the budget instead of the budget.
    """
    rates = [header.ch_sfreqs[p] for p in positions] if header.ch_sfreqs else [header.sfreq]
    rate = max(rates) if rates else 0.0
    if rate > limits.max_sfreq:
        raise BadInputError(f"sampling rate {rate:g} Hz is above the ingest ceiling of {limits.max_sfreq:g} Hz "
                            "(filtering cost and memory grow with the rate): downsample the file to ingest it")
    per_value = _BYTES_PER_VALUE.get(header.format, _BYTES_PER_VALUE_MNE)
    need = len(positions) * int(header.n_samples) * per_value
    allowed = limits.memory * (STREAM_CLAIM_FACTOR if streamed else 1)
    if need > allowed:
        how = f"streamed in blocks, up to {STREAM_CLAIM_FACTOR} x the budget {gib(limits.memory)}" if streamed \
            else f"budget {gib(limits.memory)}"
        raise BadInputError(f"recording too large for the per-file memory budget: the header claims "
                            f"{len(positions)} channels x {int(header.n_samples)} samples (about {gib(need)} "
                            f"to decode; {how}, raise file_memory_gb to ingest it)")


_NOT_REGULAR = ((stat_mod.S_ISFIFO, "a named pipe"), (stat_mod.S_ISCHR, "a character device"),
                (stat_mod.S_ISBLK, "a block device"), (stat_mod.S_ISSOCK, "a socket"),
                (stat_mod.S_ISDIR, "a directory"))


def not_regular(mode: int) -> str | None:
    """What a stat mode is when it is not a regular file (``"a named pipe"``...), None for a regular file."""
    if stat_mod.S_ISREG(mode):
        return None
    return next((what for test, what in _NOT_REGULAR if test(mode)), "not a regular file")
