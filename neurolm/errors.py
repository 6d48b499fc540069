"""Error types shared across stages.

`BadInputError` carries a one-line, human-readable `reason` that ends up in the
catalog's quarantine column. Anything raised for a *source file* problem must be
a `BadInputError` so ingestion can quarantine the file and go on; any other
exception is a bug and is reported as such.
"""

from __future__ import annotations


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


class LockLostError(StoreError):
    """This run's store lock was taken by another run: it must stop writing (raised at its next write)."""
