"""The ingestion flow: a thin Prefect wrapper around :mod:`neurolm.ingest`.

validate → lock the store → recover rows of a killed run → discover → diff
with the catalog → a ``neurolm-ingest-batches`` subflow on a DaskTaskRunner
built from the run's own ``workers``/``dask_address`` (so deployment and UI
runs use Dask too), one Prefect task per *batch* of files → fold rows into the
tables as batches finish (flushed every few seconds) →
splits, windows, tables, version complete → QC figures under the version's
``qc/`` folder → markdown report artifact linking them.

Why each choice:
- Coarse tasks (``--batch-size`` files each): a Prefect task costs ~0.1-0.3 s,
  and thousands of tiny tasks are a known Prefect failure mode (prefect#5977,
  #8579), so at most ``4 x workers`` tasks are in flight (a sliding window).
  Tasks return small row dicts only (prefect#12668).
- No Prefect result caching (``NO_CACHE``): the store itself is the cache. Each
  recording's commit marker holds its source hash and rows, so a rerun after a
  crash skips committed recordings and rebuilds the tables from the markers,
  whatever happened to Prefect's own state. That is robust to ``kill -9``,
  which Prefect's cache (written after the task returns) is not.
- Table writes happen only in the parent flow, in its process, under the store
  lock: one writer per table. The subflow hands each batch's rows back to it.
- The ``neurolm-ingest-progress`` artifact is updated as batches finish, and
  in-process listeners (the CLI's progress bar) get the same events.
"""

from __future__ import annotations

import collections
import importlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run

from flows.runtime import RunEvents
from neurolm.ingest import IngestParams, IngestState, discover, make_batches, open_store, process_batch
from neurolm.ingest.report import render_run_markdown, run_summary
from neurolm.ingest.splits import register_heldout
from storage.lock import StoreLock

QC_FIGURES = ("qc_channel_coverage.png", "qc_amplitude.png", "qc_psd.png")  # what publish_qc_figures writes
_events = RunEvents()  # batch progress for the CLI, in this process


def _emit(event: dict) -> None:
    """Send ``event`` to this process's listeners.

    A module-level function, not ``_events.emit``: Prefect ships the running flow's function to Dask
    by value with every task, and cloudpickle copies the globals it uses. A function is sent by
    reference; a bound method would send the RunEvents with its listeners (the CLI's tqdm bar).
    """
    _events.emit(event)


@task(name="ingest-batch", cache_policy=NO_CACHE, retries=0)
def ingest_batch(items: list, store_url: str, version_id: str, run_id: str,
                 known_hashes: dict[str, str]) -> list[dict]:
    """One batch of files → committed recordings + rows (runs on a Dask worker)."""
    return process_batch(items, store_url, version_id, run_id=run_id, known_hashes=known_hashes)


@dataclass(frozen=True)
class _Job:
    """What a batches subflow works on; kept in this process, never sent to the Prefect API."""

    batches: list
    known: dict[str, str]
    on_rows: Callable[[list[dict]], None]


# Why a registry instead of flow parameters: Prefect stores every flow-run parameter as JSON in its
# database; the batches of a 70k-file archive (SourceItems) and their hashes would be tens of MB per
# run. A subflow runs in its parent's process, so the parent hands it a key into this dict instead.
_JOBS: dict[str, _Job] = {}


def _job(job_id: str) -> _Job:
    """The job registered under ``job_id`` in this process.

    Why a function: Prefect sends the running subflow's function to Dask *by value* with every task
    (it is in the serialized flow-run context), and cloudpickle then copies each global that function
    names. A module-level function travels as a reference; naming ``_JOBS`` directly would ship every
    registered job (all batches, the run's state and its progress listeners) with every task.
    """
    return _JOBS[job_id]


@flow(name="neurolm-ingest-batches")
def ingest_batches(job_id: str, n_batches: int, store_url: str, version_id: str, run_id: str,
                   window: int = 8) -> int:
    """Run every batch of job ``job_id`` as ``ingest-batch`` tasks; hand each batch's rows back as it finishes.

    A sliding window of ``window`` tasks in flight, not all at once: an archive of
    70k files is ~9k batches, and thousands of pending Prefect task runs load the
    API and the Dask scheduler (prefect#8579). A failed batch fails this subflow
    (and its parent, after the parent folded every batch that did finish).
    """
    job = _job(job_id)
    queue = collections.deque(job.batches)
    in_flight: set = set()

    def submit_next() -> None:
        b = queue.popleft()
        hashes = {it.recording_id: job.known[it.recording_id] for it in b if it.recording_id in job.known}
        in_flight.add(ingest_batch.submit(b, store_url, version_id, run_id, hashes))

    while queue and len(in_flight) < max(1, window):
        submit_next()
    done = 0
    while in_flight:
        fut = next(as_completed(list(in_flight)))
        in_flight.discard(fut)
        if queue:
            submit_next()
        job.on_rows(fut.result())
        done += 1
    return done


def map_batches_on_dask(batches: list, store_url: str, version_id: str, run_id: str, known: dict[str, str],
                        on_rows: Callable[[list[dict]], None], *, workers: int = 2,
                        dask_address: str | None = None) -> None:
    """Process ``batches`` in a :func:`ingest_batches` subflow on Dask; ``on_rows`` gets each batch's rows here.

    Why a subflow whose task runner is built here, from the run's own
    ``workers``/``dask_address``: a deployment run (UI, schedule, ``prefect
    deployment run``) calls the parent flow directly, with no task runner
    chosen by a caller, and must still fan out on Dask. The local cluster lives
    only while the batches run, so planning and table writing never hold it.
    Must be called inside a flow run (it is then a subflow of that run).
    """
    from flows.runtime import dask_runner

    if not batches:
        return
    canonical = importlib.import_module("flows.ingest")
    if canonical.map_batches_on_dask is not map_batches_on_dask:
        # This copy was loaded as a script (a deployment run): what reaches the Dask workers (the
        # task, the subflow in the task's context) must come from the importable module.
        return canonical.map_batches_on_dask(batches, store_url, version_id, run_id, known, on_rows,
                                             workers=workers, dask_address=dask_address)
    job_id = uuid.uuid4().hex
    _JOBS[job_id] = _Job(list(batches), dict(known), on_rows)
    window = 4 * int(workers) if not dask_address else 64
    try:
        with dask_runner(workers, dask_address) as runner:
            ingest_batches.with_options(task_runner=runner)(job_id, len(batches), store_url, version_id, run_id,
                                                            window)
    finally:
        _JOBS.pop(job_id, None)


def _run_batches(state: IngestState, batches: list, known: dict[str, str], params: IngestParams) -> None:
    """Fold each finished batch into the tables (flushed every few seconds), the progress artifact and listeners."""
    logger = get_run_logger()
    progress = create_progress_artifact(0.0, key="neurolm-ingest-progress",
                                        description=f"{len(batches)} batches of {params.dataset_name}")
    done = 0

    def on_rows(rows: list[dict]) -> None:
        nonlocal done
        state.add(rows)
        done += 1
        state.flush(every_s=params.table_flush_s)
        update_progress_artifact(progress, 100.0 * done / len(batches), description=f"{done}/{len(batches)} batches")
        n_q = sum(r["status"] == "quarantined" for r in rows)
        logger.info("batch %d/%d: %d files, %d quarantined", done, len(batches), len(rows), n_q)
        _emit({"event": "batch", "done": done, "total": len(batches), "files": len(rows),
               "quarantined": n_q, "statuses": [r["status"] for r in rows],
               "worker_seconds": sum(float(r.get("seconds") or 0.0) for r in rows),
               "t_start": min((r["t_start"] for r in rows), default=None),
               "t_end": max((r["t_end"] for r in rows), default=None)})

    try:
        map_batches_on_dask(batches, state.store.url, state.store.version_id, state.run_id, known, on_rows,
                            workers=params.workers, dask_address=params.dask_address)
    finally:
        state.flush(force=True)  # whatever finished is in the tables, even if a batch failed


def _publish_qc(store, signals_changed: bool, logger) -> tuple[list[str], str | None]:
    """(URLs of the version's QC figures, error) — a QC problem never fails an ingestion.

    Redrawn only when this run changed signals (or the figures are missing): a
    nightly run with nothing new links the figures already there.
    """
    from neurolm.ingest.qc import publish_qc_figures
    from storage import fs

    try:
        existing = [fs.join(store.version_url, "qc", n) for n in QC_FIGURES]
        if not signals_changed and all(fs.exists(u) for u in existing):
            return existing, None
        return publish_qc_figures(store), None
    except Exception as exc:  # plotting/IO trouble: the store itself is complete and correct
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        logger.warning("QC figures not written: %s", reason)
        return [], reason


@flow(name="neurolm-ingest")
def ingest_flow(params: IngestParams) -> dict:
    """Ingest ``params.source`` into ``params.store`` incrementally; returns the run summary."""
    t0 = time.perf_counter()
    logger = get_run_logger()
    params.check_paths()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    dataset = params.dataset_name
    with StoreLock(params.store, f"ingest {run_id}", timeout_s=params.lock_timeout_s):
        if params.heldout_subjects:
            register_heldout(params.store, params.heldout_subjects, "given to neurolm ingest", "neurolm ingest")
        store = open_store(params.store)
        state = IngestState.load(store, run_id, seed=params.seed, fractions=params.split_fractions,
                                 crop_end_s=params.crop_end_s, exclude_heldout=params.heldout_policy == "exclude")
        if state.recovered:
            logger.info("restored %d recordings committed by an interrupted run", state.recovered)
        files = discover(params.source, dataset, notch_hz=params.mains_hz, layout=params.layout,
                         family=params.family)
        diff = state.plan(files, dataset)
        batches = make_batches(diff.to_ingest, params.batch_size)
        _emit({"event": "plan", "files": len(files), "to_ingest": len(diff.to_ingest), "batches": len(batches),
               "removed": len(diff.removed_rows), "recovered": state.recovered})
        if batches:
            _run_batches(state, batches, diff.known_hashes, params)
        else:
            logger.info("nothing new in %s: %d files already in the store, no work done", params.source, len(files))
        state.finalize()
        figures, qc_error = _publish_qc(store, bool(batches) or bool(state.recovered), logger)
        summary = run_summary(state, diff, len(files), dataset=dataset, source=params.source,
                              wall_s=time.perf_counter() - t0)
        summary["qc_figures"], summary["qc_error"] = figures, qc_error
    create_markdown_artifact(render_run_markdown(summary), key="neurolm-ingest-report",
                             description=f"ingestion of {dataset}")
    _emit({"event": "done", "summary": summary})
    return summary


def run_ingest(params: IngestParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Run :func:`ingest_flow` against the shared Prefect server (started here when none is configured).

    The flow itself fans the batches out on Dask (``params.workers`` local
    processes, or ``params.dask_address``). ``on_event`` receives
    ``{"event": "plan"|"batch"|"done", ...}`` dicts in this process as the run
    progresses (used by the CLI's progress bar).
    """
    from flows.runtime import prefect_server

    with _events.listening(on_event):
        with prefect_server():
            return ingest_flow(params)
