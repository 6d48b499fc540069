"""The ingestion stage as one library call: :func:`ingest` (the Prefect flow only wires it).

lock the store (every table write and commit checks it is still ours) → collect
superseded recording arrays → register held-out subjects → restore rows of a killed run →
discover → diff with the catalog → batches through a mapper (local, or Dask from
``flows/``), rows folded into the tables as batches finish (flushed every few
seconds) → splits, windows, tables, version complete → QC figures → summary.

``log`` gets human-readable lines (the flow passes its run logger), ``emit``
gets ``{"event": "plan"|"batch", ...}`` dicts (the flow turns them into a
progress artifact and CLI progress).
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from neurolm.fanout import Mapper, Outcome, local_map
from neurolm.ingest import IngestState, discover, make_batches, open_store
from neurolm.ingest.config import IngestParams
from neurolm.ingest.items import SourceItem
from neurolm.ingest.limits import FileLimits
from neurolm.ingest.qc import QC_FIGURES, publish_qc_figures
from neurolm.ingest.roots import canonical_root, claim_root
from neurolm.ingest.report import run_summary
from neurolm.ingest.worker import process_batch
from neurolm.outputs import store_outputs
from storage import fs
from storage.heldout import register_heldout
from storage.signal_store import SignalStore, store_lock


def _quiet(*_args, **_kwargs) -> None:
    return None


@dataclass(frozen=True)
class IngestBatch:
    """One work item: consecutive source items and the source hashes already in the catalog for them."""

    items: list[SourceItem]
    known_hashes: dict[str, str]

    @property
    def label(self) -> str:
        first = PurePath(self.items[0].path).name if self.items else "empty"
        return f"{first} (+{len(self.items) - 1})" if len(self.items) > 1 else first


def ingest_batch(batch: IngestBatch, store_url: str, version_id: str, run_id: str,
                 limits: FileLimits | None = None, lock_token: str | None = None) -> list[dict]:
    """One batch of files → committed recordings + small row dicts (runs on any worker, each file bounded).

    ``lock_token``: the run's store lock; every commit checks it is still held (LockLostError if not)."""
    return process_batch(batch.items, store_url, version_id, run_id=run_id, known_hashes=batch.known_hashes,
                         limits=limits, lock_token=lock_token)


def ingest(params: IngestParams, mapper: Mapper = local_map, *, run_id: str = "",
           log: Callable[[str], None] = _quiet, warn: Callable[[str], None] | None = None,
           emit: Callable[[dict], None] = _quiet) -> dict:
    """Ingest ``params.source`` into ``params.store`` incrementally; returns the run summary.

    ``summary["failed"]`` lists batches whose worker failed (not a file problem: those are
    quarantined): their files stay out of the catalog, so the next run retries them.
    ``warn`` (default ``log``) gets what needs attention: failed batches, QC trouble.
    """
    warn = warn or log
    t0 = time.perf_counter()
    params.check_paths()
    run_id = run_id or str(uuid.uuid4())
    dataset = params.dataset_name
    with store_lock(params.store, f"ingest {run_id}", timeout_s=params.lock_timeout_s, on_wait=log) as lock:
        store = open_store(params.store).bind_lock(lock)
        store.collect_garbage()
        state = IngestState.load(store, run_id, seed=params.seed, fractions=params.split_fractions,
                                 crop_end_s=params.crop_end_s, exclude_heldout=params.heldout_policy == "exclude")
        # one dataset, one root: refused (before anything of this run is written) when another archive holds it
        previous_root = claim_root(store.url, dataset, params.source, moved=params.moved, catalog=state.catalog)
        if previous_root is not None:
            log(f"dataset {dataset!r} moved from {previous_root} to {canonical_root(params.source)} (--moved)")
        if params.heldout_subjects:
            register_heldout(params.store, params.heldout_subjects, "given to neurolm ingest", "neurolm ingest")
        if state.recovered:
            log(f"restored {state.recovered} recordings committed by an interrupted run")
        files = discover(params.source, dataset, notch_hz=params.mains_hz, layout=params.layout,
                         family=params.family, tuh_le=params.tuh_le)
        diff = state.plan(files, dataset)
        batches = plan_batches(diff, params.batch_size, min_batches=2 * params.workers if not params.dask_address else 1)
        log(f"{len(files)} files found in {params.source}: {len(diff.new)} new, {len(diff.changed)} changed, "
            f"{len(diff.removed_rows)} removed; {len(diff.to_ingest)} to ingest in {len(batches)} batches")
        emit({"event": "plan", "files": len(files), "to_ingest": len(diff.to_ingest), "batches": len(batches),
              "removed": len(diff.removed_rows), "recovered": state.recovered})
        failed: list[dict] = []
        span: list[float] = []  # first file started, last file finished (epoch, any worker)
        ends: list[float] = []  # when each file finished (epoch)

        def track(event: dict) -> None:
            if event.get("event") == "batch" and event.get("t_start") is not None:
                span[:] = [min(span[0], event["t_start"]), max(span[1], event["t_end"])] if span else \
                    [event["t_start"], event["t_end"]]
                ends.extend(event.get("t_ends", ()))
            emit(event)

        if batches:
            failed = run_batches(state, batches, mapper, flush_s=params.table_flush_s, log=log, warn=warn, emit=track,
                                 limits=params.file_limits())
        else:
            log(f"nothing new in {params.source}: {len(files)} files already in the store, no work done")
        state.finalize()
        figures, qc_error = _publish_qc(store, bool(batches) or bool(state.recovered), warn)
        summary = run_summary(state, diff, len(files), dataset=dataset, source=params.source,
                              wall_s=time.perf_counter() - t0)
        summary["qc_figures"], summary["qc_error"] = figures, qc_error
        summary["failed"] = failed
        summary["outputs"] = store_outputs(store.url, store.version_id)
        # the workers' busy span: what the files cost once workers are up (no start-up, no end-of-run tables)
        summary["worker_span_s"] = span[1] - span[0] if span else None
        summary["steady_s_per_file"] = _steady_s_per_file(ends, 1 if params.dask_address else params.workers)
    return summary


def _steady_s_per_file(ends: list[float], workers: int) -> float | None:
    """Seconds per file once every worker has finished its first file (imports, filter design, caches).

    (last end - end of the ``workers``-th file) / files finished after it: the cost of one more file
    in a long run, orchestration between batches included, start-up and end-of-run work excluded.
    """
    k = max(1, workers)
    if len(ends) <= k:
        return None
    t = sorted(ends)
    return (t[-1] - t[k - 1]) / (len(t) - k)


def plan_batches(diff, batch_size: int, min_batches: int = 1) -> list[IngestBatch]:
    """The work items of a catalog diff: :func:`make_batches` of the files to ingest, with their known hashes.

    ``min_batches``: at least that many batches when there are that many files (2 x local workers:
    8 files at 8 per batch would otherwise leave the second worker idle).
    """
    known = diff.known_hashes
    return [IngestBatch(b, {it.recording_id: known[it.recording_id] for it in b if it.recording_id in known})
            for b in make_batches(diff.to_ingest, batch_size, min_batches=min_batches)]


def run_batches(state: IngestState, batches: list[IngestBatch], mapper: Mapper, *, flush_s: float = 5.0,
                log: Callable[[str], None] = _quiet, warn: Callable[[str], None] | None = None,
                emit: Callable[[dict], None] = _quiet, limits: FileLimits | None = None) -> list[dict]:
    """Run ``batches`` through ``mapper``, folding each finished one into ``state``'s tables (flushed every
    ``flush_s`` seconds, and at the end whatever happens); returns the batches that failed."""
    warn = warn or log
    done, failed = 0, []

    def on_outcome(out: Outcome) -> None:
        nonlocal done
        done += 1
        state.store.check_lock()  # lost to another run: stop here (LockLostError), committed data stays
        if not out.ok:
            failed.append({"batch": out.label, "files": len(batches[out.index].items), "error": out.error})
            warn(f"batch {done}/{len(batches)} ({out.label}) FAILED: {out.error}; its files are retried next run")
            emit({"event": "batch", "done": done, "total": len(batches), "files": 0, "quarantined": 0,
                  "failed": len(batches[out.index].items), "statuses": [], "worker_seconds": 0.0,
                  "t_start": None, "t_end": None})
            return
        rows = out.value
        state.add(rows)
        state.flush(every_s=flush_s)
        n_q = sum(r["status"] == "quarantined" for r in rows)
        log(f"batch {done}/{len(batches)} ({out.label}): {len(rows)} files, {n_q} quarantined")
        emit({"event": "batch", "done": done, "total": len(batches), "files": len(rows), "quarantined": n_q,
              "failed": 0, "statuses": [r["status"] for r in rows],
              "worker_seconds": sum(float(r.get("seconds") or 0.0) for r in rows),
              "t_start": min((r["t_start"] for r in rows), default=None),
              "t_end": max((r["t_end"] for r in rows), default=None), "t_ends": [r["t_end"] for r in rows]})

    fn = functools.partial(ingest_batch, store_url=state.store.url, version_id=state.store.version_id,
                           run_id=state.run_id, limits=limits, lock_token=state.store.lock_token)
    try:
        mapper(fn, batches, on_outcome, [b.label for b in batches])
    finally:
        state.flush(force=True)  # whatever finished is in the tables, even if the mapper itself broke
    return failed


def _publish_qc(store: SignalStore, signals_changed: bool, warn: Callable[[str], None]) -> tuple[list[str], str | None]:
    """(URLs of the version's QC figures, error) — a QC problem never fails an ingestion.

    Redrawn only when this run changed signals (or the figures are missing): a
    nightly run with nothing new links the figures already there.
    """
    try:
        existing = [fs.join(store.version_url, "qc", n) for n in QC_FIGURES]
        if not signals_changed and all(fs.exists(u) for u in existing):
            return existing, None
        return publish_qc_figures(store), None
    except Exception as exc:  # plotting/IO trouble: the store itself is complete and correct
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        warn(f"QC figures not written: {reason}")
        return [], reason
