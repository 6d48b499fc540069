"""The held-out subject registry of a signal store: ``STORE/heldout.json``.

Layout::

    STORE/heldout.json   {"subjects": {"<family>:<id>": {"reason", "source", "added"}, ...}}

Subject keys listed here must never be used for pretraining (e.g. the
evaluation subjects of TUAB/TUEV/TUSL, family ``tuh``, which also occur in
TUEG; NeuroLM#5). Entries are only added, never removed or changed (a
downstream evaluation may depend on them); each records why and who
registered it. The file lives at the store root, beside ``store.json``, so it
holds for every store version. Every update is one atomic rewrite. What a
registered subject means for splits and windows is ``neurolm.ingest.splits``'s
business, not this module's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from neurolm.errors import ConfigError, StoreError
from storage import fs

HELDOUT_FILE = "heldout.json"


def registry_url(store_url: str) -> str:
    return fs.join(store_url, HELDOUT_FILE)


def read_registry(store_url: str) -> dict:
    """The registry document; ``{"subjects": {}}`` when the store has none. StoreError when malformed."""
    try:
        doc = fs.read_json(registry_url(store_url))
    except FileNotFoundError:
        return {"subjects": {}}
    if not isinstance(doc, dict) or not isinstance(doc.get("subjects"), dict):
        raise StoreError(f"{registry_url(store_url)}: expected {{'subjects': {{key: {{...}}}}}}")
    return doc


def load_heldout(store_url: str) -> set[str]:
    """Registered held-out subject keys (empty when the store has no registry)."""
    return set(read_registry(store_url)["subjects"])


def register_heldout(store_url: str, subject_keys: Iterable[str], reason: str, source: str) -> int:
    """Add subject keys to the registry (atomic rewrite); returns how many were new.

    ``reason`` says why (e.g. ``"TUAB eval subject"``), ``source`` who registered
    them (e.g. ``"datasets.tuab"``). Existing entries keep their first reason.
    Keys must be ``"<family>:<id>"``. The caller holds the store lock.
    """
    keys = sorted({str(k) for k in subject_keys})
    bad = [k for k in keys if ":" not in k or not k.split(":", 1)[0] or not k.rsplit(":", 1)[1]]
    if bad:
        raise ConfigError(f"held-out subject keys must look like '<family>:<id>', got {bad[:3]}")
    fs.makedirs(store_url)
    doc = read_registry(store_url)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    added = 0
    for k in keys:
        if k not in doc["subjects"]:
            doc["subjects"][k] = {"reason": reason, "source": source, "added": now}
            added += 1
    if added:
        fs.write_json_atomic(registry_url(store_url), doc)
    return added
