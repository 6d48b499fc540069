"""Ingestion as a reusable library: plan → process batches anywhere → fold rows into tables.

Orchestrators (the Prefect flow in ``flows/ingest.py``, the dataset adapters,
a plain loop in a notebook or a benchmark) all follow the same three steps,
and none of them needs to know how the store or the tables work:

1. ``state = IngestState.load(store, ...)`` reads the store's tables and
   restores recordings committed by a killed run from their commit markers;
   ``plan = state.plan(discover(...))`` diffs the listing with the catalog;
2. ``process_batch(batch, store.url, store.version_id, run_id=...)`` for each
   of ``make_batches(plan.to_ingest, n)``, on any process or machine;
3. ``state.add(rows)`` as batches finish (``state.flush()`` now and then so a
   crash loses nothing already committed), ``state.finalize()`` at the end:
   splits, windows, all tables written, version marked complete.

The caller must hold the store lock (``storage.signal_store.store_lock``) around 1–3:
only one process writes the tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from neurolm.ingest.catalog import CatalogDiff, diff_catalog, merge_rows, recover_committed
from neurolm.ingest.config import IngestParams, make_params
from neurolm.ingest.discover import SourceFile, discover, recording_id_for
from neurolm.ingest.items import SourceItem
from neurolm.ingest.splits import split_for
from neurolm.ingest.windows import build_windows
from neurolm.ingest.worker import process_batch, process_item
from storage.heldout import load_heldout
from storage.signal_store import SignalStore

__all__ = [
    "IngestParams", "IngestState", "SourceFile", "SourceItem", "discover", "make_batches",
    "make_params", "open_store", "process_batch", "process_item", "recording_id_for",
]  # fmt: skip

MAX_BATCH_BYTES = 512 * 2**20
FLUSH_COST_RATIO = 10  # a run's periodic table writes take at most ~1/10 of the client's time


def open_store(url: str) -> SignalStore:
    """Open the store's current version, creating the store (default StandardizeConfig) when absent."""
    return SignalStore.open(url, create=True)


def make_batches(files: list[SourceFile], batch_size: int, max_bytes: int = MAX_BATCH_BYTES,
                 min_batches: int = 1) -> list[list[SourceItem]]:
    """Consecutive groups of at most ``batch_size`` files and ``max_bytes`` of source data (one Prefect task each).

    Coarse on purpose: each task costs ~0.1 s of orchestration, so a task must
    carry seconds of work; the byte cap keeps one batch of huge files from
    stalling the end of a run on a single worker. Groups are as even as the
    count allows (sizes differ by at most one: 10 files at 8 per batch are 5 + 5,
    not 8 + 2), and there are at least ``min_batches`` of them when there are
    that many files (pass 2 x workers, so a small run still keeps every worker busy).
    """
    n = len(files)
    k = max(-(-n // max(1, batch_size)), min(n, max(1, min_batches)))
    out: list[list[SourceItem]] = []
    start = 0
    for j in range(k):
        size = n // k + (j < n % k)
        cur: list[SourceItem] = []
        cur_bytes = 0
        for sf in files[start:start + size]:
            if cur and cur_bytes + sf.size > max_bytes:
                out.append(cur)
                cur, cur_bytes = [], 0
            cur.append(sf.item)
            cur_bytes += sf.size
        if cur:
            out.append(cur)
        start += size
    return out


@dataclass
class IngestState:
    """The tables of one store version as a run changes them (the single writer's view)."""

    store: SignalStore
    run_id: str
    seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    crop_end_s: float = 10.0
    exclude_heldout: bool = True
    dataset: str | None = None  # the dataset this run lists; its splits follow this run's seed/fractions
    _catalog: pd.DataFrame = field(default_factory=pd.DataFrame)
    _recordings: pd.DataFrame = field(default_factory=pd.DataFrame)
    recovered: int = 0
    counts: dict = field(default_factory=lambda: {"ingested": 0, "skipped": 0, "quarantined": 0})
    quarantined: list = field(default_factory=list)  # (path, reason) of this run
    hours_ingested: float = 0.0
    bytes_processed: int = 0
    _dirty: bool = False
    _last_flush: float = field(default_factory=time.monotonic)
    _flush_cost: float = 0.0  # seconds the last table write took
    # Rows of finished batches not yet merged: merging (concat + dedupe + sort) once per read or
    # flush instead of once per batch keeps a 70k-file run linear in its number of files.
    _pending_cat: list = field(default_factory=list)
    _pending_rec: list = field(default_factory=list)

    @property
    def catalog(self) -> pd.DataFrame:
        """The CATALOG rows as of now (pending batch rows merged in)."""
        self._merge()
        return self._catalog

    @catalog.setter
    def catalog(self, df: pd.DataFrame) -> None:
        self._merge()
        self._catalog = df

    @property
    def recordings(self) -> pd.DataFrame:
        """The RECORDINGS rows as of now (without up-to-date splits until flush/finalize)."""
        self._merge()
        return self._recordings

    @recordings.setter
    def recordings(self, df: pd.DataFrame) -> None:
        self._merge()
        self._recordings = df

    def _merge(self) -> None:
        if self._pending_cat:
            rows, self._pending_cat = self._pending_cat, []
            self._catalog = merge_rows(self._catalog, rows, "recording_id")
        if self._pending_rec:
            rows, self._pending_rec = self._pending_rec, []
            self._recordings = merge_rows(self._recordings, rows, "recording_id")

    @classmethod
    def load(cls, store: SignalStore, run_id: str, **kw) -> "IngestState":
        """Read the tables and restore rows of recordings committed after the last table write."""
        st = cls(store=store, run_id=run_id, **kw)
        st.catalog = store.read_table("catalog")
        st.recordings = store.read_table("recordings")
        cat_rows, rec_rows = recover_committed(store, st.recordings)
        if rec_rows:
            st.catalog = merge_rows(st.catalog, cat_rows, "recording_id")
            st.recordings = merge_rows(st.recordings, rec_rows, "recording_id")
            st.recovered = len(rec_rows)
            st._dirty = True
        return st

    def plan(self, files: list[SourceFile], dataset: str) -> CatalogDiff:
        """Diff a listing of ``dataset`` with the catalog; vanished files are marked removed at once."""
        self.dataset = dataset
        diff = diff_catalog(files, self.catalog, dataset, set(self.store.committed_ids()), self.run_id)
        touched = [r for r in diff.unchanged_rows if r.get("status") != "removed"]
        changes = diff.removed_rows + diff.skipped_rows
        if changes or touched or diff.dropped_ids:
            before = self.catalog.copy()
            cat = merge_rows(self.catalog, changes + touched, "recording_id")
            if diff.dropped_ids:
                cat = cat[~cat["recording_id"].isin(diff.dropped_ids)].reset_index(drop=True)
            self.catalog = cat
            self._dirty = (self._dirty or bool(diff.removed_rows) or bool(diff.dropped_ids)
                           or not _same(before, self.catalog))
        return diff

    def add(self, rows: list[dict]) -> None:
        """Fold the rows returned by :func:`process_batch` into the tables."""
        cats, recs = [], []
        for r in rows:
            self.counts[r["status"]] = self.counts.get(r["status"], 0) + 1
            self.bytes_processed += int(r.get("size_bytes") or 0)
            cats.append(r["catalog_row"])
            if r["recording_row"] is not None:
                recs.append(r["recording_row"])
                if r["status"] == "ingested":
                    self.hours_ingested += float(r["duration_s"]) / 3600.0
            else:
                # A changed file that is now broken keeps its previously committed signal and
                # recordings row (never drop committed data silently); the catalog says why.
                self.quarantined.append((r["catalog_row"]["path"], r["reason"]))
        self._pending_cat.extend(cats)
        self._pending_rec.extend(recs)
        self._dirty = True

    def _with_splits(self) -> pd.DataFrame:
        rec = self.recordings.copy()
        if rec.empty:
            return rec
        held = load_heldout(self.store.url)
        if "subject_key" not in rec.columns:
            rec["subject_key"] = rec["dataset"] + ":" + rec["subject"]
        rec["subject_key"] = rec["subject_key"].fillna(rec["dataset"] + ":" + rec["subject"])
        if "split" not in rec.columns:
            rec["split"] = None
        # This run's dataset follows this run's seed and fractions (a pure function, so unchanged
        # parameters change nothing); other datasets keep the splits their own runs gave them.
        rec["split"] = [
            split_for(self.seed, ds, subj, key, held, self.fractions)
            if (ds == self.dataset or sp is None or sp != sp or key in held) else sp
            for ds, subj, key, sp in zip(rec["dataset"], rec["subject"], rec["subject_key"], rec["split"])
        ]
        return rec

    def flush(self, force: bool = False, every_s: float = 5.0) -> bool:
        """Write the tables when they changed and ``every_s`` passed (or ``force``); True if written.

        Never more often than every ``FLUSH_COST_RATIO`` x the last write's duration: the whole tables are
        rewritten, so on a large archive (70,000 recordings: ~3 s) a short ``every_s`` would keep the client
        busy writing tables instead of handing out work (the commit markers make rows safe meanwhile).
        """
        every = max(every_s, FLUSH_COST_RATIO * self._flush_cost)
        if not self._dirty or (not force and time.monotonic() - self._last_flush < every):
            return False
        t0 = time.monotonic()
        rec = self._with_splits()
        self.recordings = rec
        self.store.write_table("catalog", _str_columns(self.catalog))
        self.store.write_table("recordings", _str_columns(rec))
        self.store.write_table("windows", _str_columns(build_windows(rec, self.crop_end_s, self.exclude_heldout)))
        self._dirty = False
        self._last_flush = time.monotonic()
        self._flush_cost = self._last_flush - t0
        return True

    def finalize(self) -> None:
        """Splits and windows for everything (the held-out registry may have grown), tables, status complete."""
        before = self.recordings.copy()
        self.recordings = self._with_splits()
        if not _same(before, self.recordings):
            self._dirty = True
        if not self._dirty and self.store.read_table("windows").empty and not self.recordings.empty:
            self._dirty = True  # tables of an older run without windows
        self.flush(force=True)
        self.store.set_status("complete")


def _str_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns (all-None, or empty) as pandas ``str``, which the table schemas require; nulls stay null."""
    obj = [c for c in df.columns if df[c].dtype == object]
    return df.astype({c: "str" for c in obj}) if obj else df


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        return a.shape == b.shape and bool((a.fillna("") == b.fillna("")).all().all())
    except (ValueError, TypeError):
        return False
