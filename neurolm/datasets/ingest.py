"""Downstream-dataset ingestion as library steps (the Prefect flow only orchestrates them).

The recordings go through the ONE ingestion path (`neurolm.ingest`: catalog
diff, `process_batch`, `IngestState`), so a dataset gets the same resumable,
incremental, quarantining ingestion as any archive. What is added here:

1. `plan_dataset`: the adapter's discovery → `SourceFile`s (with the dataset's
   channel order and notch in each `SourceItem`) + per-file problems;
2. `problem_rows`: files the adapter rejected (no label file, renamed
   folder, ...) become ``quarantined`` catalog rows with their reason, so
   `neurolm inspect` shows them next to files the worker quarantined;
3. `build_labels`: windows of every committed recording of the dataset, the
   split (paper = the reference's protocol by default, or seeded subject-wise),
   held-out subjects, and the LABELS table rows;
4. `write_labels`: replaces this task's rows in the store's LABELS table
   (other tasks' rows are kept: one store can hold all six datasets).

Labels are recomputed from the label files on every run (cheap), so a fixed
label file or another split mode takes effect without re-ingesting signals.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from neurolm.datasets import DATASETS, REFERENCE_COUNTS, get_adapter
from neurolm.datasets.base import DatasetAdapter, Problem, relpath
from neurolm.errors import ConfigError
from neurolm.ingest.config import Count, DaskAddress
from neurolm.fanout import Mapper, local_map
from neurolm.ingest import IngestState, open_store
from neurolm.ingest.discover import SourceFile, format_for, recording_id_for
from neurolm.ingest.roots import canonical_root, claim_root
from neurolm.ingest.run import plan_batches, run_batches
from neurolm.outputs import store_outputs
from storage.heldout import register_heldout
from storage.signal_store import SignalStore, store_lock

_WHERE = re.compile(r"^(event [\d.]+-[\d.]+ s|epoch at [\d.]+ s|clip \d+ \([^)]*\))[: ]*")

#: LABELS columns written, with the default of the optional ones.
LABEL_COLUMNS: dict[str, object] = {
    "task": "", "recording_id": "", "subject": "", "start": 0, "length": 0, "label": 0, "label_name": "",
    "split": "", "source": "", "official": "", "trial": -1, "channel": -1, "wrap": False, "conflict": False,
}


class DatasetIngestParams(BaseModel):
    """Arguments of one `neurolm ingest-dataset` run; validated before any work."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(description="tuab | tuev | seed | hmc | workload | tusl")
    root: str = Field(description="the dataset's root folder, as downloaded")
    store: str = Field(description="signal store URL (created when absent)")
    split: Literal["paper", "seeded"] = Field(
        default="paper", description="paper: NeuroLM's evaluation protocol (default); seeded: subject-wise hash")
    seed: int = Field(0, description="seed of the seeded splits (and of the paper splits the original left unseeded)")
    workers: Count = Field(2, description="local Dask worker processes")
    batch_size: Count = Field(4, description="files per Dask task")
    tuev_mode: Literal["dedup", "reference"] = Field(
        "dedup", description="TUEV: one sample per event (dedup) or one per channel-event row as the original")
    dask_address: DaskAddress = Field(None, description="an existing Dask scheduler (tcp://host:8786); none: a local cluster")
    lock_timeout_s: float = Field(30.0, description="seconds to wait for another run's store lock")
    moved: bool = Field(False, description="the dataset's folder moved: accept ROOT as its new root (otherwise a "
                                           "root other than the one this store ingested the dataset from is refused)")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        if v.lower() not in DATASETS:
            raise ValueError(f"unknown dataset {v!r}; choose one of {', '.join(DATASETS)}")
        return v.lower()

    def adapter(self) -> DatasetAdapter:
        return get_adapter(self.dataset, mode=self.tuev_mode) if self.dataset == "tuev" else get_adapter(self.dataset)


def make_dataset_params(**kwargs) -> DatasetIngestParams:
    """Validated params; every problem becomes one `ConfigError` line. Checks that the root exists."""
    try:
        p = DatasetIngestParams(**kwargs)
    except ValidationError as exc:
        msgs = [f"{'.'.join(str(x) for x in e['loc']) or 'params'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()]
        raise ConfigError("; ".join(msgs)) from None
    if not Path(p.root).is_dir():
        raise ConfigError(f"dataset root {p.root} is not a directory")
    return p


def plan_dataset(adapter: DatasetAdapter, root: str) -> tuple[list[SourceFile], list[Problem]]:
    """The adapter's items as `SourceFile`s (stat data for the catalog diff) and its problems."""
    items, problems = adapter.discover(root)
    files = []
    for it in items:
        st = os.stat(it.path)
        rel = relpath(root, it.path)
        files.append(SourceFile(item=it, rel_path=rel, size=int(st.st_size), mtime=float(st.st_mtime),
                                format=format_for(rel) or ""))
    return files, problems


def problem_rows(adapter: DatasetAdapter, root: str, problems: list[Problem], run_id: str,
                 previous: pd.DataFrame | None = None) -> list[dict]:
    """`process_batch`-shaped quarantined rows for the files discovery rejected (folders are only reported).

    A file rejected for the same reason by an earlier run (same size and mtime)
    keeps that run's row, so an unchanged dataset leaves the catalog unchanged.
    """
    prev = {}
    if previous is not None and not previous.empty:
        prev = {r["recording_id"]: r for r in previous.to_dict("records") if r["dataset"] == adapter.name}
    rows = []
    for path, reason in problems:
        if not os.path.isfile(path):
            continue
        st = os.stat(path)
        rid = recording_id_for(adapter.name, relpath(root, path))
        cat = {"path": path, "format": format_for(path), "size_bytes": int(st.st_size), "mtime": float(st.st_mtime),
               "content_hash": "", "dataset": adapter.name, "subject": "", "session": "", "status": "quarantined",
               "reason": reason, "recording_id": rid, "run_id": run_id}
        old = prev.get(rid)
        if old is not None and all(old.get(k) == cat[k] for k in ("status", "reason", "size_bytes", "mtime", "path")):
            cat["run_id"] = old["run_id"]
        rows.append({"recording_id": rid, "status": "quarantined", "reason": reason, "catalog_row": cat,
                     "recording_row": None, "duration_s": 0.0, "size_bytes": int(st.st_size)})
    return rows


def build_labels(adapter: DatasetAdapter, files: list[SourceFile], recordings: pd.DataFrame, *,
                 mode: str = "paper", seed: int = 0) -> tuple[pd.DataFrame, list[Problem]]:
    """Label rows (with splits) of every committed recording among `files`, and the skipped events.

    `recordings` is the store's RECORDINGS table (``n_samples`` at 200 Hz per
    recording id); files without a row there were quarantined and get no label.
    """
    n_by_id = {}
    if not recordings.empty:
        n_by_id = dict(zip(recordings["recording_id"], recordings["n_samples"]))
    rows: list[dict] = []
    skipped: list[Problem] = []
    for sf in files:
        n = n_by_id.get(sf.item.recording_id)
        if n is None:
            continue
        rows += adapter.windows(sf.item, {"n_samples": int(n), "sfreq": 200.0}, skipped)
    universe = [sf.rel_path for sf in files]
    rows = adapter.split(rows, mode, seed, universe)
    return to_frame(rows), skipped


def planned_test_subjects(adapter: DatasetAdapter, files: list[SourceFile], mode: str, seed: int) -> list[str]:
    """Subject keys the split will put in test, known before any signal is read.

    Why: held-out subjects must be registered *before* the first table flush,
    or a run killed mid-way leaves their pretraining windows in the WINDOWS
    table. One stand-in row per recording is enough for every subject- or
    file-level rule (TUAB/TUEV eval folders, hash splits, sorted file cuts).
    """
    rows = []
    for sf in files:
        ex = dict(sf.item.extra)
        label = int(ex.get("label", 0))
        rows.append({**adapter.row(sf.item, 0, 1, label), "trial": -1})
    if not rows:
        return []
    out = adapter.split(rows, mode, seed, [sf.rel_path for sf in files])
    return sorted({r["subject"] for r in out if r["split"] == "test"})


def to_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows → a DataFrame with exactly `LABEL_COLUMNS` (missing optional columns get their default)."""
    df = pd.DataFrame([{k: r.get(k, d) for k, d in LABEL_COLUMNS.items()} for r in rows],
                      columns=list(LABEL_COLUMNS))
    for col in ("start", "length", "label", "trial", "channel"):
        df[col] = df[col].astype("int64")
    for col in ("wrap", "conflict"):
        df[col] = df[col].astype(bool)
    return df


def write_labels(store: SignalStore, task: str, labels: pd.DataFrame) -> pd.DataFrame:
    """Replace `task`'s rows of the store's LABELS table (validated); returns the whole table."""
    old = store.read_table("labels")
    if not old.empty and "task" in old.columns:
        old = old[old["task"] != task]
    parts = [df for df in (old, labels) if not df.empty]
    table = pd.concat(parts, ignore_index=True) if parts else labels
    table = table.sort_values(["task", "recording_id", "start"], kind="stable").reset_index(drop=True)
    store.write_table("labels", table)
    return table


def test_subjects(labels: pd.DataFrame) -> list[str]:
    """Subject keys with at least one test window (registered as held out for TUH corpora)."""
    if labels.empty:
        return []
    return sorted(set(labels.loc[labels["split"] == "test", "subject"]))


def split_counts(adapter: DatasetAdapter, labels: pd.DataFrame) -> list[dict]:
    """Per split: our count next to the reference's published count (None when not published)."""
    ref = REFERENCE_COUNTS.get(adapter.name, {})
    ours = Counter(labels["split"]) if not labels.empty else Counter()
    out = [{"split": s, "ours": int(ours.get(s, 0)), "reference": ref.get(s)} for s in ("train", "val", "test")]
    out.append({"split": "total", "ours": int(len(labels)), "reference": ref.get("total")})
    return out


def quarantined_files(catalog: pd.DataFrame, dataset: str, problems: list[Problem]) -> list[Problem]:
    """(path, reason) of this dataset's files the worker quarantined (this run or an earlier one)."""
    if catalog.empty:
        return []
    rejected = {p for p, _ in problems}
    q = catalog[(catalog["dataset"] == dataset) & (catalog["status"] == "quarantined")]
    return [(p, r) for p, r in zip(q["path"], q["reason"]) if p not in rejected]


def nested_counts(labels: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{split: {label_name: n}} (JSON-friendly)."""
    out: dict[str, dict[str, int]] = {}
    for (split, name), n in (labels.groupby(["split", "label_name"]).size().items() if not labels.empty else []):
        out.setdefault(str(split), {})[str(name)] = int(n)
    return out


def skip_summary(problems: list[Problem], skipped: list[Problem], quarantined: list[Problem]) -> dict:
    """Counts by reason kind and the per-file list, for the report."""
    def kind(reason: str) -> str:  # "event 5-6 s: unknown label code 9 (expected 1-6)" -> "unknown label code N"
        tail = _WHERE.sub("", reason).split(":")[0]
        return " ".join(re.sub(r"\d+(\.\d+)?", "N", re.sub(r"\([^)]*\)", "", tail)).split())

    per_file: dict[str, list[str]] = {}
    for path, reason in [*problems, *quarantined, *skipped]:
        per_file.setdefault(path, []).append(reason)
    return {
        "n_files_rejected": len({p for p, _ in problems}),
        "n_files_quarantined": len({p for p, _ in quarantined}),
        "n_events_skipped": len(skipped),
        "skipped_by_kind": dict(Counter(kind(r) for _, r in skipped)),
        "per_file": per_file,
    }


def ingest_dataset(params: DatasetIngestParams, mapper: Mapper = local_map, run_id: str = "",
                   log: Callable[[str], None] | None = None, warn: Callable[[str], None] | None = None) -> dict:
    """Ingest one downstream dataset: recordings, labels, splits, held-out registry; returns the summary.

    Holds the store lock throughout (one table writer). ``mapper`` runs the
    ingestion worker on the batches (default: one after another here; the
    Prefect flow fans them out on Dask); tables are flushed every few seconds so
    a killed run loses nothing committed. ``summary["failed"]`` lists batches
    whose worker failed; their files are retried by the next run.
    """

    t0 = time.perf_counter()
    run_id = run_id or str(uuid.uuid4())
    say = log or (lambda _msg: None)
    adapter = params.adapter()
    with store_lock(params.store, f"ingest-dataset {adapter.name} {run_id}", timeout_s=params.lock_timeout_s,
                    on_wait=say) as lock:
        store = open_store(params.store).bind_lock(lock)  # every table write and commit checks the lock
        store.collect_garbage()  # recording arrays superseded more than the grace period ago
        state = IngestState.load(store, run_id, seed=params.seed, fractions=adapter.seeded_fractions)
        previous_root = claim_root(store.url, adapter.name, params.root, moved=params.moved, catalog=state.catalog,
                                   new_name_hint="ingest it into another store (an adapter's dataset name is fixed)",
                                   who=f"neurolm ingest-dataset {adapter.name}")
        if previous_root is not None:
            say(f"{adapter.name} moved from {previous_root} to {canonical_root(params.root)} (--moved)")
        files, problems = plan_dataset(adapter, params.root)
        previous_catalog = state.catalog.copy()
        diff = state.plan(files, adapter.name)
        committed = set(store.committed_ids())  # a stored signal whose label file broke keeps its rows
        state.add([r for r in problem_rows(adapter, params.root, problems, run_id, previous_catalog)
                   if r["recording_id"] not in committed])
        early = planned_test_subjects(adapter, files, params.split, params.seed) if adapter.heldout_test else []
        if early:
            register_heldout(store.url, early, f"{adapter.task} test subject", f"datasets.{adapter.name}")
        batches = plan_batches(diff, params.batch_size)
        say(f"{adapter.task}: {len(files)} recordings ({len(diff.to_ingest)} to ingest in {len(batches)} batches), "
            f"{len(problems)} rejected by discovery")
        failed = run_batches(state, batches, mapper, flush_s=5.0, log=say, warn=warn)
        labels, skipped = build_labels(adapter, files, state.recordings, mode=params.split, seed=params.seed)
        held = test_subjects(labels) if adapter.heldout_test else []
        if held:
            register_heldout(store.url, held, f"{adapter.task} test subject", f"datasets.{adapter.name}")
        state.finalize()  # recordings of held-out subjects get split 'heldout' and no pretraining windows
        write_labels(store, adapter.task, labels)
        return {
            "dataset": adapter.name, "task": adapter.task, "root": params.root, "store": store.url,
            "version_id": store.version_id, "split_mode": params.split, "seed": params.seed,
            "tuev_mode": params.tuev_mode if adapter.name == "tuev" else None,
            "n_recordings": len(files), "n_ingested": state.counts.get("ingested", 0),
            "n_skipped_unchanged": len(files) - len(diff.to_ingest) + state.counts.get("skipped", 0),
            "n_labels": int(len(labels)), "n_heldout_registered": len(set(held) | set(early)),
            "counts": split_counts(adapter, labels),
            "label_counts": nested_counts(labels),
            "skips": skip_summary(problems, skipped, quarantined_files(state.catalog, adapter.name, problems)),
            "protocol": adapter.protocol(params.split, params.seed),
            "tuev_conflicts": getattr(adapter, "conflicts", None),
            "failed": failed,
            "outputs": store_outputs(store.url, store.version_id),
            "wall_s": time.perf_counter() - t0,
        }
