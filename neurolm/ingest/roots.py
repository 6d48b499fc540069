"""One dataset, one root: a second archive never lands on the ids of another.

Recording ids depend only on the dataset name and each file's path relative to
the root (so a moved archive is not re-ingested). The flip side: two different
archives under one dataset name (``site_a/eeg`` and ``site_b/eeg`` both default
to ``eeg``; ``EEG-2020`` and ``eeg_2020`` slug alike) would overwrite each
other's recordings and mark each other's files removed. So each dataset
remembers its root (``storage.datasets``, ``STORE/datasets.json``) and another
root is refused with a message naming both, unless the caller says the archive
moved. Stores written before the registry existed: the root is taken from the
catalog (every listed path of the dataset must lie under the new root).
"""

from __future__ import annotations

import os

import pandas as pd

from neurolm.errors import ConfigError
from storage import datasets as registry
from storage import fs


def canonical_root(source: str) -> str:
    """The root as recorded: a local path with links resolved, or the normalized URL."""
    url = fs.normalize_url(source)
    return os.path.realpath(url) if fs.is_local(url) else url


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _root_from_catalog(catalog: pd.DataFrame | None, dataset: str, source: str) -> str | None:
    """For a store without a registry entry: a path of ``dataset`` in the catalog outside ``source``, if any.

    Rows already ``removed`` are left out: they keep the path of a file that vanished long ago.
    """
    if catalog is None or catalog.empty or not {"dataset", "path", "status"} <= set(catalog.columns):
        return None
    rows = catalog[(catalog["dataset"] == dataset) & (catalog["status"] != "removed")]
    url = fs.normalize_url(source)
    local = fs.is_local(url)
    for p in rows["path"].dropna().astype(str):
        inside = _under(p, url) or (local and _under(os.path.realpath(p), canonical_root(url)))
        if not inside:
            return p
    return None


def claim_root(store_url: str, dataset: str, source: str, *, moved: bool = False,
               catalog: pd.DataFrame | None = None, new_name_hint: str = "give it its own name with --dataset NAME",
               who: str = "neurolm ingest") -> str | None:
    """Record ``source`` as ``dataset``'s root, or refuse (ConfigError) when another root holds the name.

    ``moved``: the archive moved, so the new root replaces the old one (returned).
    ``new_name_hint`` tells the user how to ingest it as another dataset. The caller holds the store lock.
    Returns the previous root when it was replaced, else None.
    """
    root = canonical_root(source)
    known = registry.dataset_root(store_url, dataset)
    if known is None:
        stray = _root_from_catalog(catalog, dataset, source)
        if stray is not None and not moved:
            raise ConfigError(
                f"dataset {dataset!r} in store {fs.normalize_url(store_url)} holds files from outside {root} "
                f"(e.g. {stray}): another archive was ingested under this name. Ingesting {root} as "
                f"{dataset!r} would overwrite its recordings. To add {root} as a new dataset, {new_name_hint}; "
                f"if the archive moved to {root}, rerun with --moved.")
        registry.record_root(store_url, dataset, root, who)
        return None
    if known == root:
        return None
    if not moved:
        raise ConfigError(
            f"dataset {dataset!r} in store {fs.normalize_url(store_url)} was ingested from {known}, not {root}: "
            f"two archives under one dataset name would overwrite each other's recordings. To add {root} as a "
            f"new dataset, {new_name_hint}; if the archive moved from {known} to {root}, "
            "rerun with --moved (files keep their recordings; only changed ones are re-ingested).")
    registry.record_root(store_url, dataset, root, who)
    return known
