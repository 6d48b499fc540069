"""Downstream-dataset ingestion flow: a thin Prefect wrapper around :func:`neurolm.datasets.ingest.ingest_dataset`.

Same machinery as ``flows/ingest.py``: one shared Prefect server, a Dask task
runner, coarse ``ingest-batch`` tasks running the one batch worker (so a
dataset is ingested exactly like any archive: resumable from commit markers,
incremental by catalog diff, bad files quarantined with a reason), tables
written only in the flow process under the store lock, and no Prefect result
cache because the store's commit markers are the cache. The library adds the
adapter's discovery, the label windows, the split, the LABELS table and the
held-out registration of TUH test subjects (NeuroLM#5).
"""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run

from flows.ingest import ingest_batch
from neurolm.datasets import ingest as ds
from neurolm.datasets.report import render_markdown


def _dask_batches(batches, store_url, version_id, run_id, known):
    """`MapBatches` on Prefect tasks: submit all, yield each batch's rows as it completes."""
    futures = [ingest_batch.submit(b, store_url, version_id, run_id,
                                   {i.recording_id: known[i.recording_id] for i in b if i.recording_id in known})
               for b in batches]
    for fut in as_completed(futures):
        yield fut.result()


@flow(name="neurolm-ingest-dataset")
def ingest_dataset_flow(params: ds.DatasetIngestParams) -> dict:
    """Ingest one downstream dataset into ``params.store``: recordings, labels, splits; returns the summary."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    summary = ds.ingest_dataset(params, _dask_batches, run_id=run_id, log=logger.info)
    create_markdown_artifact(render_markdown(summary), key=f"neurolm-dataset-{summary['dataset']}",
                             description=f"ingestion of {summary['task']}")
    return summary


def run_ingest_dataset(params: ds.DatasetIngestParams) -> dict:
    """Run :func:`ingest_dataset_flow` with the shared Prefect server and a Dask task runner."""
    from flows.runtime import dask_runner, prefect_server

    with prefect_server(), dask_runner(params.workers, params.dask_address) as runner:
        return ingest_dataset_flow.with_options(task_runner=runner)(params)
