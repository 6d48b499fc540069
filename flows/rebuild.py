"""The rebuild flow: a thin Prefect wrapper around :func:`neurolm.ingest.rebuild.rebuild_store`.

``rebuild_flow`` (lock, plan, finish, switch) runs in the flow process; the
batches run in a *subflow* whose task runner is the Dask runner of
:mod:`flows.runtime`. Why a subflow rather than ``with_options(task_runner=...)``
at the call site: a deployment run (UI, schedule) calls ``rebuild_flow``
directly, and must still fan out on Dask with the ``workers``/``dask_address``
of its own parameters; the subflow builds that runner from them.

Tasks are one per batch of files, return small row dicts, and are not cached
(the new version's commit markers are the cache: a rerun resumes from them).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run

from neurolm.ingest.items import SourceItem
from neurolm.ingest.rebuild import RebuildParams, RebuildResult, rebuild_store
from neurolm.ingest.worker import process_batch


@task(name="rebuild-batch", cache_policy=NO_CACHE, retries=0)
def rebuild_batch(items: list[SourceItem], store_url: str, version_id: str, run_id: str) -> list[dict]:
    """Re-ingest one batch into the new version (runs on a Dask worker)."""
    return process_batch(items, store_url, version_id, run_id=run_id)


@flow(name="neurolm-rebuild-batches")
def rebuild_batches(batches: list[list[SourceItem]], store_url: str, version_id: str,
                    run_id: str) -> list[list[dict]]:
    """Submit every batch; collect the ones that finish (a failed batch is logged, then resumed by a rerun)."""
    logger = get_run_logger()
    futures = [rebuild_batch.submit(b, store_url, version_id, run_id) for b in batches]
    out: list[list[dict]] = []
    for i, fut in enumerate(as_completed(futures), 1):
        try:
            out.append(fut.result())
        except Exception as exc:  # finish_rebuild refuses to switch with missing items
            logger.error("a rebuild batch failed: %s", exc)
            continue
        logger.info("rebuild batch %d/%d done", i, len(batches))
    return out


def _markdown(r: RebuildResult, figures: list[str]) -> str:
    links = [f"- [{u.rsplit('/', 1)[-1]}]({u if '://' in u else 'file://' + u})" for u in figures]
    return "\n".join([
        f"# Rebuild of `{r.store_url}`", "",
        f"**{r.status}**: {r.message}", "",
        "| | |", "|---|---|",
        f"| old version | `{r.old_version}` |", f"| new version | `{r.new_version}` |",
        f"| items | {r.n_items} |", f"| re-ingested | {r.n_ingested} |", f"| resumed | {r.n_resumed} |",
        f"| quarantined | {r.n_quarantined} |", f"| removed | {r.n_removed} |",
        f"| wall time | {r.seconds:.1f} s |",
        *(["", "QC figures of the new version:", *links] if links else []),
    ])


@flow(name="neurolm-rebuild")
def rebuild_flow(params: RebuildParams) -> dict:
    """Build a new store version for a changed config beside the current one; switch when complete."""
    from flows.runtime import dask_runner

    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())

    def on_dask(batches, store_url, version_id, rid):
        if not batches:
            return []
        with dask_runner(params.workers, params.dask_address) as runner:
            return rebuild_batches.with_options(task_runner=runner)(batches, store_url, version_id, rid)

    result = rebuild_store(params, map_batches=on_dask, run_id=run_id)
    logger.info(result.message)
    figures: list[str] = []
    if result.status != "up_to_date":
        try:  # QC of the new version; a plotting problem must not fail a finished rebuild
            from neurolm.ingest.qc import publish_qc_figures
            from storage.signal_store import SignalStore

            figures = publish_qc_figures(SignalStore.open(result.store_url, version=result.new_version))
        except Exception as exc:
            logger.warning("QC figures not written: %s", exc)
    create_markdown_artifact(_markdown(result, figures), key="neurolm-rebuild-report",
                             description=f"rebuild of {result.store_url}")
    return {**asdict(result), "qc_figures": figures}


def run_rebuild(params: RebuildParams) -> dict:
    """Run :func:`rebuild_flow` against the shared Prefect server (started here when none is configured)."""
    from flows.runtime import prefect_server

    with prefect_server():
        return rebuild_flow(params)
