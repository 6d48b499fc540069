"""The ingestion flow: Prefect wiring around :func:`neurolm.ingest.run.ingest`.

The library does the stage (lock, held-out registry, recovery, discovery,
planning, batches, tables, QC); this flow gives it the one Dask mapper
(:class:`flows.fanout.DaskMapper`, built from the run's own
``workers``/``dask_address`` so deployment and UI runs fan out on Dask too), the
run logger, a progress artifact, the markdown report, and in-process progress
events for the CLI's bar.

Why no Prefect result caching: the store itself is the cache. Each recording's
commit marker holds its source hash and rows, so a rerun after a crash skips
committed recordings and rebuilds the tables from the markers, whatever happened
to Prefect's own state (robust to ``kill -9``, which Prefect's cache is not).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from flows.fanout import DaskMapper
from flows.runtime import RunEvents, cli_run, finished, run_name
from neurolm.errors import NeurolmError
from neurolm.ingest import IngestParams
from neurolm.ingest.report import render_run_markdown, render_run_text
from neurolm.ingest.run import ingest

_events = RunEvents()  # batch progress for the CLI, in this process
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)


@flow(name="neurolm-ingest", flow_run_name=run_name("ingest", "dataset_name", "dataset"))
def ingest_flow(params: IngestParams) -> dict:
    """Ingest ``params.source`` into ``params.store`` incrementally; returns the run summary."""
    logger = get_run_logger()
    progress: dict = {}

    def on_event(event: dict) -> None:
        if event["event"] == "plan" and event["batches"]:
            progress["id"] = create_progress_artifact(0.0, key="neurolm-ingest-progress",
                                                      description=f"{event['batches']} batches of "
                                                                  f"{params.dataset_name}")
        elif event["event"] == "batch" and "id" in progress:
            update_progress_artifact(progress["id"], 100.0 * event["done"] / event["total"],
                                     description=f"{event['done']}/{event['total']} batches")
        _emit(event)

    mapper = DaskMapper(params.workers, params.dask_address, name="neurolm-ingest-batches")
    summary = ingest(params, mapper, run_id=str(flow_run.get_id() or uuid.uuid4()), log=logger.info,
                     warn=logger.warning, emit=on_event)
    create_markdown_artifact(render_run_markdown(summary), key="neurolm-ingest-report",
                             description=f"ingestion of {params.dataset_name}")
    _emit({"event": "done", "summary": summary})
    if summary["failed"]:
        f = summary["failed"]
        raise NeurolmError(f"{len(f)} batch(es) failed ({sum(x['files'] for x in f)} files; first: {f[0]['batch']}: "
                           f"{f[0]['error']}); everything else is committed: rerun to retry them")
    logger.info(render_run_text(summary))
    return finished(summary, summary["quarantined"], logger, summary["quarantine"])


def run_ingest(params: IngestParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Run :func:`ingest_flow` against the shared Prefect server (started here when none is configured).

    ``on_event`` receives ``{"event": "plan"|"batch"|"done", ...}`` dicts in this
    process as the run progresses (used by the CLI's progress bar).
    """
    with _events.listening(on_event):
        with cli_run("ingest"):
            return ingest_flow(params)
