"""The tokenization flow: Prefect wiring around :func:`neurolm.corpus.run.tokenize_corpus`.

The run is prepared once: by :func:`run_tokenize` (what the CLI calls) before a
Prefect server starts, so bad inputs fail fast, and handed to the flow body; a
flow started otherwise (deployment, UI) prepares it itself. The library locks
the corpus root and runs one work item per shard through a mapper; this flow gives it the one Dask mapper
(:class:`flows.fanout.DaskMapper`, built from the run's own ``workers`` /
``dask_address``, so deployment and UI runs fan out on Dask too) or, for
``workers=0``, the in-process mapper (on a GPU one process should own the
device, and the background reader thread overlaps reads and compute); plus a
progress artifact, the report artifact and progress events for the CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.runtime import flow_run

from flows.fanout import DaskMapper
from flows.runtime import cli_run, run_name, PreparedRuns, RunEvents
from neurolm.corpus.inspect import inspect_corpus, render_text
from neurolm.corpus.params import TokenizeParams
from neurolm.corpus.run import prepare_tokenize, tokenize_corpus
from neurolm.corpus.tokenize import TokenizeJob
from neurolm.fanout import local_map

_events = RunEvents()  # progress for the CLI, in this process
_runs = PreparedRuns()  # the run prepared by run_tokenize, for the flow body
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)


def _prepared(params: TokenizeParams) -> TokenizeJob:
    """The job run_tokenize prepared for ``params`` in this process, else prepared now (module-level, as _emit)."""
    return _runs.take(params, prepare_tokenize)


@flow(name="neurolm-tokenize", flow_run_name=run_name("tokenize", "out"))
def tokenize_flow(params: TokenizeParams) -> dict:
    """Materialise the token corpus for ``params``; returns a summary dict (``nothing_to_do`` when complete)."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    progress: dict = {}

    def on_event(event: dict) -> None:
        if event["event"] == "plan":
            progress["total"] = event["shards"]
        elif event["event"] == "shard":
            if "id" not in progress:
                progress["id"] = create_progress_artifact(0.0, key="neurolm-tokenize-progress",
                                                          description=f"{event['total']} shards")
            update_progress_artifact(progress["id"], 100.0 * event["done"] / event["total"],
                                     description=f"{event['done']}/{event['total']} shards")
        _emit(event)

    mapper = (local_map if params.n_workers == 0 else
              DaskMapper(params.n_workers, params.dask_address, name="neurolm-tokenize-shards"))
    summary = tokenize_corpus(params, mapper, job=_prepared(params), run_id=run_id, log=logger.info,
                              emit=on_event)
    report = inspect_corpus(summary["corpus"], summary["version_id"], max_shards=64)
    head = (f"Run {run_id}: {summary['shards_done_now']} shards tokenized now "
            f"({summary['tokens_done_now']:,} tokens, {summary['tokens_per_s'] or 0:,.0f} tokens/s), "
            f"{summary['shards_total'] - summary['shards_done_now']} already committed.\n\n")
    create_markdown_artifact(head + render_text(report), key="neurolm-tokenize-report",
                             description=f"token corpus {summary['version_id']}")
    _emit({"event": "done", "summary": summary})
    return summary


def run_tokenize(params: TokenizeParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Prepare the run (bad inputs fail here, before a server starts), then run :func:`tokenize_flow`
    against the shared Prefect server (started here when none is configured) on that prepared run."""
    job = prepare_tokenize(params)
    with _events.listening(on_event), _runs.holding(params, job):
        with cli_run("tokenize"):
            return tokenize_flow(params)
