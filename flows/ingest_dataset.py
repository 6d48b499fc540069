"""Downstream-dataset ingestion flow: a thin Prefect wrapper around :func:`neurolm.datasets.ingest.ingest_dataset`.

Same machinery as ``flows/ingest.py``: one shared Prefect server, coarse
``ingest-batch`` tasks running the one batch worker (so a dataset is ingested
exactly like any archive: resumable from commit markers, incremental by catalog
diff, bad files quarantined with a reason) in a ``neurolm-ingest-batches``
subflow whose Dask task runner is built from the run's own
``workers``/``dask_address`` (so a deployment or UI run fans out on Dask too),
tables written only in the flow process under the store lock, and no Prefect
result cache because the store's commit markers are the cache. The library adds
the adapter's discovery, the label windows, the split, the LABELS table and the
held-out registration of TUH test subjects (NeuroLM#5).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows.ingest import map_batches_on_dask
from neurolm.datasets import ingest as ds
from neurolm.datasets.report import render_markdown


def _on_dask(params: ds.DatasetIngestParams):
    """The library's `MapBatches`, fanned out on Dask in a subflow of the running flow.

    The library pulls rows from an iterator while the subflow pushes them as
    batches finish, so the rows are handed over when the subflow returns; when a
    batch fails, the rows of every batch that did finish are still handed over
    (then the error is raised), and a rerun resumes from the commit markers.
    """

    def map_batches(batches, store_url, version_id, run_id, known) -> Iterator[list[dict]]:
        finished: list[list[dict]] = []
        error: BaseException | None = None
        try:
            map_batches_on_dask(batches, store_url, version_id, run_id, known, finished.append,
                                workers=params.workers, dask_address=params.dask_address)
        except Exception as exc:  # hand over what finished first; the library flushes it in its finally
            error = exc
        yield from finished
        if error is not None:
            raise error

    return map_batches


@flow(name="neurolm-ingest-dataset")
def ingest_dataset_flow(params: ds.DatasetIngestParams) -> dict:
    """Ingest one downstream dataset into ``params.store``: recordings, labels, splits; returns the summary."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    summary = ds.ingest_dataset(params, _on_dask(params), run_id=run_id, log=logger.info)
    create_markdown_artifact(render_markdown(summary), key=f"neurolm-dataset-{summary['dataset']}",
                             description=f"ingestion of {summary['task']}")
    return summary


def run_ingest_dataset(params: ds.DatasetIngestParams) -> dict:
    """Run :func:`ingest_dataset_flow` against the shared Prefect server (started here when none is configured).

    The flow itself fans the batches out on Dask (see :func:`flows.ingest.map_batches_on_dask`).
    """
    from flows.runtime import prefect_server

    with prefect_server():
        return ingest_dataset_flow(params)
