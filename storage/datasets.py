"""The dataset-root registry of a signal store: ``STORE/datasets.json``.

Layout::

    STORE/datasets.json   {"datasets": {"<name>": {"root", "registered", "source",
                                                    "moved_from": [{"root", "moved"}, ...]}}}

Why: recording ids derive from the dataset name and each file's path relative
to its root, so two archives ingested under one dataset name (``site_a/eeg``
and ``site_b/eeg`` both default to ``eeg``) would map their files onto the same
ids and overwrite each other. Each dataset remembers the root it was ingested
from; whether another root is accepted (the archive moved) is the ingest
stage's decision, not this module's. The file lives at the store root, beside
``store.json``, so it holds for every store version. Every update is one
atomic rewrite; the caller holds the store lock.
"""

from __future__ import annotations

from datetime import datetime, timezone

from neurolm.errors import StoreError
from storage import fs

DATASETS_FILE = "datasets.json"


def registry_url(store_url: str) -> str:
    return fs.join(fs.normalize_url(store_url), DATASETS_FILE)


def read_registry(store_url: str) -> dict:
    """The registry document; ``{"datasets": {}}`` when the store has none. StoreError when malformed."""
    try:
        doc = fs.read_json(registry_url(store_url))
    except FileNotFoundError:
        return {"datasets": {}}
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
        raise StoreError(f"{registry_url(store_url)}: expected {{'datasets': {{name: {{'root': ...}}}}}}")
    return doc


def dataset_root(store_url: str, name: str) -> str | None:
    """The root ``name`` was last ingested from, or None when the registry does not know it."""
    entry = read_registry(store_url)["datasets"].get(name)
    return str(entry["root"]) if isinstance(entry, dict) and entry.get("root") else None


def record_root(store_url: str, name: str, root: str, source: str) -> None:
    """Set the root of dataset ``name`` (atomic rewrite); a previous different root goes to ``moved_from``.

    ``source`` says who registered it (e.g. ``"neurolm ingest"``).
    """
    fs.makedirs(fs.normalize_url(store_url))
    doc = read_registry(store_url)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = doc["datasets"].get(name)
    if isinstance(old, dict) and old.get("root") == root:
        return
    entry = {"root": root, "registered": now, "source": source, "moved_from": []}
    if isinstance(old, dict) and old.get("root"):
        entry["moved_from"] = [*old.get("moved_from", []), {"root": old["root"], "moved": now}]
    doc["datasets"][name] = entry
    fs.write_json_atomic(registry_url(store_url), doc)
