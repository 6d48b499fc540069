"""The rebuild flow: a thin Prefect wrapper around :func:`neurolm.ingest.rebuild.rebuild_store`.

``rebuild_flow`` (lock, plan, finish, switch) runs in the flow process; the
batches run through the one Dask mapper (:class:`flows.fanout.DaskMapper`) in a
``neurolm-rebuild-batches`` subflow, built from the run's own
``workers``/``dask_address`` so a deployment run (UI, schedule) fans out on
Dask too.

Tasks are one per batch of files, return small row dicts, and are not cached
(the new version's commit markers are the cache: a rerun resumes from them).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows.fanout import DaskMapper
from flows.runtime import cli_run, run_name
from neurolm.ingest.rebuild import RebuildParams, RebuildResult, rebuild_store
from neurolm.ingest.qc import publish_qc_figures
from neurolm.ingest.report import render_qc_links
from storage.signal_store import SignalStore


def _markdown(r: RebuildResult, figures: list[str]) -> str:
    links = render_qc_links(figures)
    return "\n".join([
        f"# Rebuild of `{r.store_url}`", "",
        f"**{r.status}**: {r.message}", "",
        "| | |", "|---|---|",
        f"| old version | `{r.old_version}` |", f"| new version | `{r.new_version}` |",
        f"| items | {r.n_items} |", f"| re-ingested | {r.n_ingested} |", f"| resumed | {r.n_resumed} |",
        f"| quarantined | {r.n_quarantined} |", f"| removed | {r.n_removed} |",
        f"| wall time | {r.seconds:.1f} s |",
        *(["", "QC figures of the new version:", "", *links[2:]] if links else []),
    ])


@flow(name="neurolm-rebuild", flow_run_name=run_name("rebuild", "store"))
def rebuild_flow(params: RebuildParams) -> dict:
    """Build a new store version for a changed config beside the current one; switch when complete."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    mapper = DaskMapper(params.workers, params.dask_address, name="neurolm-rebuild-batches")
    result = rebuild_store(params, mapper, run_id=run_id)
    logger.info(result.message)
    figures: list[str] = []
    if result.status != "up_to_date":
        try:  # QC of the new version; a plotting problem must not fail a finished rebuild

            figures = publish_qc_figures(SignalStore.open(result.store_url, version=result.new_version))
        except Exception as exc:
            logger.warning("QC figures not written: %s", exc)
    create_markdown_artifact(_markdown(result, figures), key="neurolm-rebuild-report",
                             description=f"rebuild of {result.store_url}")
    return {**asdict(result), "qc_figures": figures}


def run_rebuild(params: RebuildParams) -> dict:
    """Run :func:`rebuild_flow` against the shared Prefect server (started here when none is configured)."""
    with cli_run("rebuild"):
        return rebuild_flow(params)
