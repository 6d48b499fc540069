"""Rebuild a signal store under a new standardization config or vocabulary, beside the old one.

Why a rebuild and not an in-place rewrite: training jobs and tokenization runs
read the current version for hours; rewriting it would hand them a mix of old
and new signals. So the new config gets its own version directory
(``VERSION_ID`` depends on the config hash and the vocabulary version), every
non-removed source file of the current version's catalog is re-ingested into it
with the same batch worker as ingestion, and ``store.json`` is switched to it
in one atomic write only when every item has been processed. Readers that
opened the old version keep reading it (MOABB's digest-named cache and
"lock file last" rule, applied to whole versions).

Resumable: recordings already committed in the new version with the same
ingest key and an unchanged source (every file it read: stat, then the full
hash when a stat moved) are not redone (their catalog/recordings rows come
back from their commit markers), so a crashed rebuild continues where it
stopped, and a rebuild back to an earlier config re-reads what changed since.

What is carried over from the old version: per-item settings recorded in the
commit markers (subject key, per-source notch, layout metadata, channel list
and order, end crop), each recording's split (a
rebuild must never move a subject between train and test), and the labels
table. Files that vanished from the source since the last ingest cannot be
rebuilt: they become ``removed`` rows in the new catalog.

The library runs batches through a mapper (:mod:`neurolm.fanout`): one after
another here by default; :mod:`flows.rebuild` passes the one Dask mapper.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neurolm.errors import ConfigError, StoreError
from neurolm.fanout import Mapper, Outcome, local_map
from neurolm.ingest.catalog import merge_rows, source_unchanged
from neurolm.ingest.config import DaskAddress
from neurolm.ingest.items import SourceItem
from neurolm.ingest.layouts import infer_metadata
from neurolm.ingest.splits import split_for
from neurolm.ingest.windows import build_windows
from neurolm.ingest.worker import ingest_key, process_batch
from neurolm.outputs import store_outputs
from neurolm.standardize import StandardizeConfig
from schemas.io import read_table
from schemas.tables import STORE_TABLES
from storage import fs
from storage import versions as V
from storage.heldout import load_heldout
from storage.signal_store import SignalStore, store_lock

log = logging.getLogger(__name__)

GONE_REASON = "source file no longer present at rebuild (not in this version)"


class RebuildParams(BaseModel):
    """Parameters of one rebuild (the Prefect UI form, the CLI arguments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str = Field(description="signal store URL")
    config_file: str | None = Field(default=None, description="YAML/JSON of StandardizeConfig fields, "
                                    "merged over the current version's config")
    notch_hz: float | None = Field(default=None, gt=0, lt=100, description="new default mains notch (Hz)")
    no_notch: bool = Field(default=False, description="disable the default notch")
    l_freq: float | None = Field(default=None, description="new high-pass edge (Hz)")
    h_freq: float | None = Field(default=None, description="new low-pass edge (Hz)")
    source_notch: Literal["keep", "store"] = Field(
        default="keep", description="'keep' per-source mains frequencies; 'store' apply the store notch to all")
    workers: int = Field(default=2, ge=1, description="local Dask worker processes")
    batch_size: int = Field(default=8, ge=1, description="files per Prefect task")
    dask_address: DaskAddress = Field(default=None, description="existing Dask scheduler, e.g. tcp://host:8786")
    crop_end_s: float = Field(default=10.0, ge=0, description="seconds cropped from each recording's end for windows")
    seed: int = Field(default=0, description="split seed for recordings without a previous split")
    exclude_heldout: bool = Field(default=True, description="no pretraining windows for held-out subjects")
    switch: bool = Field(default=True, description="make the new version current when complete")
    lock_timeout_s: float = Field(default=30.0, ge=0, description="wait for another run holding the store")


def make_rebuild_params(**kwargs) -> RebuildParams:
    """RebuildParams with pydantic's errors flattened into one ConfigError."""
    try:
        return RebuildParams(**kwargs)
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
                         for e in exc.errors())
        raise ConfigError(f"invalid rebuild arguments: {msgs}") from None


def _read_config_file(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) if not path.endswith(".json") else json.load(fh)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("standardize"), dict):
        doc = doc["standardize"]
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of StandardizeConfig fields")
    return doc


def new_config(current: dict, params: RebuildParams):
    """The StandardizeConfig to rebuild with: current config ← config file ← explicit options."""
    merged = dict(current)
    if params.config_file:
        merged.update(_read_config_file(params.config_file))
    if params.notch_hz is not None and params.no_notch:
        raise ConfigError("give either notch_hz or no_notch, not both")
    merged.update({k: getattr(params, k) for k in ("notch_hz", "l_freq", "h_freq") if getattr(params, k) is not None})
    if params.no_notch:
        merged["notch_hz"] = None
    known = set(StandardizeConfig.model_fields)
    unknown = sorted(set(merged) - known)
    if unknown:
        raise ConfigError(f"unknown standardization settings {unknown}; known: {sorted(known)}")
    try:
        return StandardizeConfig(**merged)
    except ValidationError as exc:
        raise ConfigError(f"invalid standardization config: {exc.errors()[0]['msg']}") from None


# ----------------------------------------------------------------------------- reading the old version


def _marker(url: str, vid: str, rid: str) -> dict | None:
    """A commit marker read directly (works across vocabulary versions, which SignalStore refuses)."""
    return V.read_marker(url, vid, rid)


def _old_table(url: str, vid: str, name: str) -> pd.DataFrame:
    return read_table(V.table_url(url, vid, name), STORE_TABLES[name], missing_ok=True)


def _labelled_channels(dataset: str, stored: list[str] | None) -> list[str] | None:
    """The channel list a labelled recording was ingested with: its adapter's, else what was stored.

    For markers without a channel list (written before the worker recorded
    ``SourceItem.channels``, or ingested unrestricted): without this a rebuild of
    such a store could keep every vocabulary channel of a TUAB file instead of the
    23 in NeuroLM's order, and labels/models would no longer line up.
    """
    try:
        from neurolm.datasets import DATASETS, get_adapter

        if dataset in DATASETS:
            return list(get_adapter(dataset).channels) or stored
    except (ImportError, ConfigError):
        pass
    return stored


def items_from_version(url: str, vid: str, source_notch: str = "keep") -> tuple[list[SourceItem], list[dict]]:
    """(items to re-ingest, catalog rows already ``removed``) from version ``vid``'s catalog and markers."""
    cat = _old_table(url, vid, "catalog")
    rows = cat.where(cat.notna(), None).to_dict("records")
    markers = {r["recording_id"]: _marker(url, vid, r["recording_id"]) for r in rows
               if r["status"] == "ingested" and r.get("recording_id")}
    attrs = {rid: (m or {}).get("attrs") or {} for rid, m in markers.items()}
    # A quarantined file has no marker: it inherits the notch its dataset's other files were given.
    ds_notch = {}
    for rid, a in attrs.items():
        ds = (a.get("catalog_row") or {}).get("dataset")
        if ds is not None and "notch_hz" in a:
            ds_notch.setdefault(ds, Counter())[json.dumps(a["notch_hz"])] += 1
    # Recordings of labelled downstream datasets keep their fixed channel list and order.
    labelled = set(_old_table(url, vid, "labels")["recording_id"])
    items, removed = [], []
    for r in sorted(rows, key=lambda r: str(r.get("recording_id") or r["path"])):
        if r["status"] == "removed" or not r.get("recording_id"):
            removed.append(r)
            continue
        a = attrs.get(r["recording_id"], {})
        rec_row = a.get("recording_row") or {}
        key = rec_row.get("subject_key") or a.get("subject_key")
        if not key:  # no marker: the layout rules still know TUH/BIDS names from the path alone
            meta = infer_metadata(os.path.dirname(r["path"]), r["path"], dataset=r["dataset"])
            key = meta["subject_key"] if meta["layout"] == "tuh" else f"{r['dataset']}:{r['subject']}"
        if "notch_hz" in a:
            notch = a["notch_hz"]
        elif r["dataset"] in ds_notch:
            notch = json.loads(ds_notch[r["dataset"]].most_common(1)[0][0])
        else:
            notch = None
        channels = a.get("channels")
        if channels is None and r["recording_id"] in labelled:  # e.g. a marker older than the channels attr
            channels = _labelled_channels(r["dataset"], (markers.get(r["recording_id"]) or {}).get("ch_names"))
        items.append(SourceItem(
            path=r["path"], recording_id=r["recording_id"], dataset=r["dataset"], subject=r["subject"] or "",
            session=r["session"] or "", subject_key=str(key),
            notch_hz=None if source_notch == "store" else notch,
            channels=tuple(channels) if channels else None,
            crop_end_s=float(a.get("crop_end_s") or 0.0),
            extra=tuple(sorted((str(k), str(v)) for k, v in (a.get("extra") or {}).items())),
        ))
    return items, removed


# ----------------------------------------------------------------------------- plan, run, finish


@dataclass(frozen=True)
class RebuildPlan:
    """What a rebuild will do; ``up_to_date`` when the store is already at the requested config."""

    store_url: str
    old_version: str
    new_version: str
    config_hash: str
    items: tuple[SourceItem, ...] = ()
    todo: tuple[SourceItem, ...] = ()  # items not yet committed in the new version
    removed_rows: tuple[dict, ...] = ()
    up_to_date: bool = False


@dataclass
class RebuildResult:
    store_url: str
    old_version: str
    new_version: str
    status: str  # "up_to_date" | "switched" | "complete" (built, not switched)
    n_items: int = 0
    n_ingested: int = 0
    n_resumed: int = 0
    n_quarantined: int = 0
    n_removed: int = 0
    seconds: float = 0.0
    message: str = ""
    outputs: dict[str, str] = field(init=False)  # what the next stage takes: the store and its version

    def __post_init__(self) -> None:
        self.outputs = store_outputs(self.store_url, self.new_version)


def _target(params: RebuildParams):
    """(store url, current version id, new StandardizeConfig); ConfigError/StoreError before any write."""

    url = fs.normalize_url(params.store)
    meta = V.read_store_meta(url)
    if meta is None or not meta.get("current"):
        raise ConfigError(f"no signal store with a current version at {url} (run neurolm ingest first)")
    old = meta["current"]
    old_meta = V.read_version_json(url, old)
    if old_meta is None:
        raise StoreError(f"store {url}: current version {old} has no version.json")
    return url, old, new_config(old_meta.get("standardize") or {}, params)


def target_versions(params: RebuildParams) -> tuple[str, str]:
    """(current version id, version id the rebuild would produce); equal means nothing to do. Writes nothing."""
    _, old, cfg = _target(params)
    return old, V.version_id_for(cfg)


def plan_rebuild(params: RebuildParams) -> RebuildPlan:
    """Validate, create the new version directory (status ``building``) and list the work.

    The new version is *not* made current here (``make_current=False``).
    """
    url, old, cfg = _target(params)
    vid = V.version_id_for(cfg)
    if vid == old:
        return RebuildPlan(url, old, vid, V.config_hash(cfg), up_to_date=True)
    items, removed = items_from_version(url, old, params.source_notch)
    new = SignalStore.open(url, create=True, config=cfg, make_current=False)
    todo = []
    for it in items:
        a = (_marker(url, vid, it.recording_id) or {}).get("attrs") or {}
        if a.get("ingest_key") != ingest_key(new.config_hash, it) or not _same_source(it, a):
            todo.append(it)  # the worker re-checks the hash and reuses the marker only when it still matches
    return RebuildPlan(url, old, vid, new.config_hash, tuple(items), tuple(todo), tuple(removed))


def _same_source(item: SourceItem, attrs: dict) -> bool:
    """Whether every file a committed recording read is unchanged (stat; full hash only if a stat moved).

    Why: the new version may hold a marker from an earlier build (a rebuild back to an earlier
    config) whose source changed since; reusing it would bring back stale signals.
    """
    row = attrs.get("catalog_row") or {}
    if not attrs.get("source_hash") or not row:
        return False
    try:
        return source_unchanged(item.path, row, attrs["source_hash"])
    except OSError:  # unreadable now: the worker quarantines it with the reason
        return False


def _batches(items: Sequence[SourceItem], size: int) -> list[list[SourceItem]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def rebuild_batch(batch: list[SourceItem], store_url: str, version_id: str, run_id: str,
                  lock_token: str | None = None) -> list[dict]:
    """Re-ingest one batch into the new version (runs on any worker); commits check ``lock_token``."""
    return process_batch(batch, store_url, version_id, run_id=run_id, lock_token=lock_token)


def _gone(item: SourceItem, run_id: str) -> dict:
    return {"path": item.path, "format": None, "size_bytes": 0, "mtime": 0.0, "content_hash": "",
            "dataset": item.dataset, "subject": item.subject, "session": item.session, "status": "removed",
            "reason": GONE_REASON, "recording_id": item.recording_id, "run_id": run_id}


def finish_rebuild(plan: RebuildPlan, rows: list[dict], params: RebuildParams, run_id: str = "",
                   lock: Any = None) -> RebuildResult:  # a held StoreLock (store_lock)
    """Write the new version's tables from markers + this run's rows, mark it complete, switch.

    Refuses (StoreError, nothing switched) when an item has neither a commit
    marker nor a row from this run: a batch was lost, and a rerun resumes it.
    With ``lock`` (the store lock held), every write first checks it is still held.
    """
    store = SignalStore.open(plan.store_url, version=plan.new_version).bind_lock(lock)
    by_id = {r["recording_id"]: r for r in rows}
    committed = set(store.committed_ids())
    cat_rows, rec_rows, missing = list(plan.removed_rows), [], []
    n_resumed = n_quar = n_gone = 0
    for it in plan.items:
        r = by_id.get(it.recording_id)
        if it.recording_id in committed and (r is None or r["status"] in ("ingested", "skipped")):
            a = store.recording_meta(it.recording_id).get("attrs") or {}
            cat_rows.append(a["catalog_row"])
            rec_rows.append(dict(a["recording_row"]))
            n_resumed += r is None
        elif r is not None:
            cat_rows.append(r["catalog_row"])
            n_gone += r["catalog_row"]["status"] == "removed"
            n_quar += r["catalog_row"]["status"] == "quarantined"
        else:
            missing.append(it.recording_id)
    if missing:
        raise StoreError(f"rebuild of {plan.store_url} into {plan.new_version} is incomplete: {len(missing)} "
                         f"item(s) were not processed (e.g. {missing[0]}); rerun the rebuild to resume")
    old_rec = _old_table(plan.store_url, plan.old_version, "recordings")
    old_split = dict(zip(old_rec["recording_id"], old_rec["split"]))
    heldout = load_heldout(plan.store_url)
    for row in rec_rows:
        key = row.get("subject_key") or f"{row['dataset']}:{row['subject']}"
        row["split"] = ("heldout" if key in heldout else
                        old_split.get(row["recording_id"]) or split_for(params.seed, row["dataset"],
                                                                        row["subject"], key, heldout))
    recordings = merge_rows(None, rec_rows, "recording_id")
    keyed = [r for r in cat_rows if r.get("recording_id")]
    catalog = merge_rows(None, keyed, "recording_id")
    unkeyed = [r for r in cat_rows if not r.get("recording_id")]
    if unkeyed:
        catalog = pd.concat([catalog, pd.DataFrame(unkeyed)], ignore_index=True)
    if not catalog.empty:
        store.write_table("catalog", catalog)
    if not recordings.empty:
        store.write_table("recordings", recordings)
        windows = build_windows(recordings, crop_end_s=params.crop_end_s, exclude_heldout=params.exclude_heldout)
        if not windows.empty:  # an absent table reads as an empty typed one
            store.write_table("windows", windows)
    labels = _old_table(plan.store_url, plan.old_version, "labels")
    if not labels.empty:
        keep = set(recordings["recording_id"]) if not recordings.empty else set()
        store.write_table("labels", labels[labels["recording_id"].isin(keep)].reset_index(drop=True))
    store.set_status("complete")
    if params.switch:
        store.switch_version(plan.new_version)
    return RebuildResult(
        plan.store_url, plan.old_version, plan.new_version, "switched" if params.switch else "complete",
        n_items=len(plan.items), n_ingested=len(rec_rows) - n_resumed, n_resumed=n_resumed,
        n_quarantined=n_quar, n_removed=len(plan.removed_rows) + n_gone,
        message=(f"rebuilt {len(rec_rows)} recording(s) into {plan.new_version}"
                 + (f" (current; was {plan.old_version})" if params.switch else " (not switched)")))


def rebuild_store(params: RebuildParams, mapper: Mapper = local_map, run_id: str = "") -> RebuildResult:
    """Plan, process every missing item through ``mapper`` (default: here, in turn), finish. Holds the store lock.

    A failed batch is logged; the new version is then incomplete, so it is not switched
    to (:func:`finish_rebuild` refuses) and a rerun resumes it.
    """
    t0 = time.perf_counter()
    url = fs.normalize_url(params.store)
    with store_lock(url, f"rebuild {run_id}".strip(), timeout_s=params.lock_timeout_s) as lock:
        plan = plan_rebuild(params)
        if plan.up_to_date:
            return RebuildResult(url, plan.old_version, plan.new_version, "up_to_date",
                                 message=f"store already at this config ({plan.old_version}); nothing to do")
        present = [it for it in plan.todo if fs.exists(it.path)]
        rows = [{"recording_id": it.recording_id, "status": "removed", "catalog_row": _gone(it, run_id)}
                for it in plan.todo if not fs.exists(it.path)]

        def on_outcome(out: Outcome) -> None:
            if out.ok:
                rows.extend(out.value)
            else:
                log.error("rebuild batch %s failed: %s", out.label, out.error)

        batches = _batches(present, params.batch_size)
        mapper(functools.partial(rebuild_batch, store_url=url, version_id=plan.new_version, run_id=run_id,
                                 lock_token=lock.token),
               batches, on_outcome, [f"rebuild-{os.path.basename(b[0].path)} (+{len(b) - 1})" for b in batches])
        result = finish_rebuild(plan, rows, params, run_id, lock)
    result.seconds = time.perf_counter() - t0
    return result


def version_summaries(store_url: str) -> list[dict]:
    """Every version: id, status, created, config hash, notch, recordings committed, current marker."""
    return V.version_summaries(store_url)


def remove_store_version(store_url: str, version_id: str, lock_timeout_s: float = 30.0) -> None:
    """Delete a non-current version under the store lock (never under a running ingest or rebuild).

    StoreError for the current version or an unknown id. Readers that still
    have the removed version open lose it: remove only versions nobody uses.
    """
    url = fs.normalize_url(store_url)
    if V.read_store_meta(url) is None:
        raise ConfigError(f"no signal store at {url}")
    with store_lock(url, f"remove {version_id}", timeout_s=lock_timeout_s):
        V.remove_version(url, version_id)
