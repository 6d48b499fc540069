"""Downstream-dataset ingestion flow: Prefect wiring around :func:`neurolm.datasets.ingest.ingest_dataset`.

Same machinery as ``flows/ingest.py``: one shared Prefect server and the one
Dask mapper (:class:`flows.fanout.DaskMapper`, built from the run's own
``workers``/``dask_address``, so a deployment or UI run fans out on Dask too)
running the one ingestion worker, so a dataset is ingested exactly like any
archive (resumable from commit markers, incremental by catalog diff, bad files
quarantined with a reason). The library adds the adapter's discovery, the label
windows, the split, the LABELS table and the held-out registration of TUH test
subjects (NeuroLM#5).
"""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows.fanout import DaskMapper
from flows.runtime import cli_run, finished, run_name
from neurolm.datasets import ingest as ds
from neurolm.datasets.report import render_markdown
from neurolm.errors import NeurolmError


@flow(name="neurolm-ingest-dataset", flow_run_name=run_name("ingest-dataset", "dataset", "split"))
def ingest_dataset_flow(params: ds.DatasetIngestParams) -> dict:
    """Ingest one downstream dataset into ``params.store``: recordings, labels, splits; returns the summary."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    mapper = DaskMapper(params.workers, params.dask_address, name="neurolm-ingest-batches")
    summary = ds.ingest_dataset(params, mapper, run_id=run_id, log=logger.info, warn=logger.warning)
    create_markdown_artifact(render_markdown(summary), key=f"neurolm-dataset-{summary['dataset']}",
                             description=f"ingestion of {summary['task']}")
    if summary["failed"]:
        f = summary["failed"]
        raise NeurolmError(f"{len(f)} batch(es) failed (first: {f[0]['batch']}: {f[0]['error']}); "
                           "everything else is committed: rerun to retry them")
    sk = summary["skips"]
    problems = [{"path": p, "reason": "; ".join(r)} for p, r in sorted(sk["per_file"].items())]
    return finished(summary, sk["n_files_quarantined"] + sk["n_files_rejected"], logger, problems)


def run_ingest_dataset(params: ds.DatasetIngestParams) -> dict:
    """Run :func:`ingest_dataset_flow` against the shared Prefect server (started here when none is configured)."""
    with cli_run("ingest-dataset"):
        return ingest_dataset_flow(params)
