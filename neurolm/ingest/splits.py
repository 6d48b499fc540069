"""Subject-wise train/val/test splits (the held-out registry itself is ``storage.heldout``).

Splits are a pure function of ``(seed, dataset, subject)``: the subject's
position ``u = sha256("seed:dataset:subject") / 2**256`` in [0, 1) is compared
with the cumulative fractions. Why hashing instead of shuffling a subject list
(what NeuroLM and LaBraM do, unseeded): adding subjects to an archive, or
ingesting it in several runs, never moves an existing subject to another split,
so a model evaluated on "test" never silently trained on it after a re-ingest.
All recordings of a subject share its split (no subject leakage). The cost is
that fractions are met in expectation, not exactly, on tiny datasets.

Subjects registered in the store's held-out registry (``storage.heldout``,
``STORE/heldout.json``: e.g. the evaluation subjects of TUAB/TUEV/TUSL, which
also occur in TUEG, NeuroLM#5) get split ``heldout``; their recordings produce
no pretraining windows.
"""

from __future__ import annotations

import hashlib

_SPLIT_NAMES = ("train", "val", "test")


def subject_position(seed: int, dataset: str, subject: str) -> float:
    """Deterministic position of a subject in [0, 1)."""
    digest = hashlib.sha256(f"{int(seed)}:{dataset}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(seed: int, dataset: str, subject: str,
                 fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for one subject (stable under adding other subjects)."""
    u = subject_position(seed, dataset, subject)
    edge = 0.0
    for name, frac in zip(_SPLIT_NAMES, fractions):
        edge += frac
        if u < edge:
            return name
    # Rounding at the top edge: the last split with a non-zero fraction.
    return next(n for n, f in reversed(list(zip(_SPLIT_NAMES, fractions))) if f > 0)


def split_for(seed: int, dataset: str, subject: str, subject_key: str, heldout: set[str],
              fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """The split of a recording: ``heldout`` when its subject key is registered, else :func:`assign_split`."""
    if subject_key and subject_key in heldout:
        return "heldout"
    return assign_split(seed, dataset, subject, fractions)
