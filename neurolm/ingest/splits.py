"""Subject-wise train/val/test splits and the held-out subject registry.

Splits are a pure function of ``(seed, dataset, subject)``: the subject's
position ``u = sha256("seed:dataset:subject") / 2**256`` in [0, 1) is compared
with the cumulative fractions. Why hashing instead of shuffling a subject list
(what NeuroLM and LaBraM do, unseeded): adding subjects to an archive, or
ingesting it in several runs, never moves an existing subject to another split,
so a model evaluated on "test" never silently trained on it after a re-ingest.
All recordings of a subject share its split (no subject leakage). The cost is
that fractions are met in expectation, not exactly, on tiny datasets.

The held-out registry ``STORE/heldout.json`` lists subject keys
(``"<family>:<id>"``) that must never be used for pretraining, e.g. the
evaluation subjects of TUAB/TUEV/TUSL (family ``tuh``) which also occur in TUEG
(NeuroLM#5). Their recordings get split ``heldout`` and produce no pretraining
windows. Entries are only added (a downstream evaluation may depend on them);
each records why and who registered it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

from storage import fs

HELDOUT_FILE = "heldout.json"
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


def _registry_url(store_url: str) -> str:
    return fs.join(store_url, HELDOUT_FILE)


def _read(store_url: str) -> dict:
    try:
        doc = fs.read_json(_registry_url(store_url))
    except FileNotFoundError:
        return {"subjects": {}}
    if not isinstance(doc, dict) or not isinstance(doc.get("subjects"), dict):
        from neurolm.errors import StoreError

        raise StoreError(f"{_registry_url(store_url)}: expected {{'subjects': {{key: {{...}}}}}}")
    return doc


def load_heldout(store_url: str) -> set[str]:
    """Registered held-out subject keys (empty when the store has no registry)."""
    return set(_read(store_url)["subjects"])


def register_heldout(store_url: str, subject_keys, reason: str, source: str) -> int:
    """Add subject keys to the registry (atomic rewrite); returns how many were new.

    ``reason`` says why (e.g. ``"TUAB eval subject"``), ``source`` who registered
    them (e.g. ``"datasets.tuab"``). Existing entries keep their first reason.
    Keys must be ``"<family>:<id>"``.
    """
    from neurolm.errors import ConfigError

    keys = sorted({str(k) for k in subject_keys})
    bad = [k for k in keys if ":" not in k or not k.split(":", 1)[0] or not k.rsplit(":", 1)[1]]
    if bad:
        raise ConfigError(f"held-out subject keys must look like '<family>:<id>', got {bad[:3]}")
    fs.makedirs(store_url)
    doc = _read(store_url)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    added = 0
    for k in keys:
        if k not in doc["subjects"]:
            doc["subjects"][k] = {"reason": reason, "source": source, "added": now}
            added += 1
    if added:
        fs.write_json_atomic(_registry_url(store_url), doc)
    return added
