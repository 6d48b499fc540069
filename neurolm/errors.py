"""Error types shared across stages.

`BadInputError` carries a one-line, human-readable `reason` that ends up in the
catalog's quarantine column. Anything raised for a *source file* problem must be
a `BadInputError` so ingestion can quarantine the file and go on; any other
exception is a bug and is reported as such.
"""

from __future__ import annotations

from pydantic import ValidationError


class NeurolmError(Exception):
    """Base class for errors neurolm raises on purpose."""


class BadInputError(NeurolmError):
    """A source file cannot be ingested. `reason` is one line, no traceback."""

    def __init__(self, reason: str):
        reason = " ".join(str(reason).split())  # force a single line
        super().__init__(reason)
        self.reason = reason


class ConfigError(NeurolmError, ValueError):
    """Invalid user-supplied argument or configuration (reported before any work)."""


class StoreError(NeurolmError):
    """A store is missing, incompatible, locked or corrupt."""


def _oserror_words(exc: OSError) -> str:
    import errno

    words = {
        errno.EINVAL: "a size or offset in the file is out of range",
        errno.EIO: "the storage device reported a read error",
        errno.ENOENT: "the file (or a file it names) does not exist",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EISDIR: "a directory where a file was expected",
        errno.ENXIO: "not a regular file",
        errno.EFBIG: "a size in the file is too large",
        errno.ENOMEM: "not enough memory to read it",
        errno.ELOOP: "a symbolic link loop",
    }
    return words.get(exc.errno, "the file cannot be read")


def describe(exc: BaseException, detail: str | None = None) -> str:
    """What an exception raised while reading a source file says about the file, in words.

    ``words: Type: detail`` on one line: the words first (what is wrong with the
    file), the technical detail after a colon for whoever debugs it (``detail``
    replaces the exception's message, e.g. with its first line).
    """
    if isinstance(exc, BadInputError):
        return exc.reason
    if isinstance(exc, MemoryError):
        words = "the file needs more memory than this machine can give one file"
    elif isinstance(exc, OverflowError):
        words = "a size or count in the file is too large to be real"
    elif isinstance(exc, OSError):
        words = _oserror_words(exc)
    elif isinstance(exc, (EOFError, UnicodeDecodeError)):
        words = "the file is truncated or its content is not what its format requires"
    elif isinstance(exc, (ValueError, IndexError, KeyError, TypeError, AttributeError, LookupError,
                          ArithmeticError, AssertionError)):
        words = "the file's content does not match its format (malformed or truncated)"
    else:
        words = "the file could not be read"
    detail = " ".join(f"{type(exc).__name__}: {exc if detail is None else detail}".split())
    return f"{words}: {detail}"[:500]


class LockLostError(StoreError):
    """This run's store lock was taken by another run: it must stop writing (raised at its next write)."""


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: ``field: message; other: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "params"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if not msg.startswith(loc) else msg)
    return "; ".join(parts) or str(exc)
