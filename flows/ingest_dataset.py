"""Downstream-dataset ingestion flow: a thin Prefect wrapper around :mod:`neurolm.datasets.ingest`.

Same machinery as ``flows/ingest.py`` (one shared Prefect server, a Dask task
runner, coarse ``ingest-batch`` tasks running the one batch worker, tables
written only here under the store lock, no Prefect result cache because the
store's commit markers are the cache), plus: the adapter's discovery, label
windows, the split and the LABELS table, and the held-out registration of the
test subjects of TUH corpora (so TUEG pretraining never sees them, NeuroLM#5).
"""

from __future__ import annotations

import time
import uuid

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.runtime import flow_run

from flows.ingest import ingest_batch
from neurolm.datasets import ingest as ds
from neurolm.datasets.report import render_markdown
from neurolm.ingest import IngestState, make_batches, open_store
from neurolm.ingest.splits import register_heldout
from storage.lock import StoreLock


@flow(name="neurolm-ingest-dataset")
def ingest_dataset_flow(params: ds.DatasetIngestParams) -> dict:
    """Ingest one downstream dataset into ``params.store``: recordings, labels, splits; returns the summary."""
    t0 = time.perf_counter()
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    adapter = params.adapter()
    with StoreLock(params.store, f"ingest-dataset {adapter.name} {run_id}", timeout_s=params.lock_timeout_s):
        store = open_store(params.store)
        state = IngestState.load(store, run_id, seed=params.seed, fractions=adapter.seeded_fractions)
        files, problems = ds.plan_dataset(adapter, params.root)
        previous_catalog = state.catalog.copy()
        diff = state.plan(files, adapter.name)
        state.add(ds.problem_rows(adapter, params.root, problems, run_id, previous_catalog))
        batches = make_batches(diff.to_ingest, params.batch_size)
        logger.info("%s: %d recordings (%d to ingest in %d batches), %d rejected by discovery",
                    adapter.task, len(files), len(diff.to_ingest), len(batches), len(problems))
        futures = [ingest_batch.submit(b, store.url, store.version_id, run_id,
                                       {it.recording_id: diff.known_hashes[it.recording_id]
                                        for it in b if it.recording_id in diff.known_hashes})
                   for b in batches]
        try:
            for fut in as_completed(futures):
                state.add(fut.result())
                state.flush(every_s=5.0)
        finally:
            state.flush(force=True)
        labels, skipped = ds.build_labels(adapter, files, state.recordings, mode=params.split, seed=params.seed)
        held = ds.test_subjects(labels) if adapter.heldout_test else []
        if held:
            register_heldout(store.url, held, f"{adapter.task} test subject", f"datasets.{adapter.name}")
        state.finalize()  # recordings of held-out subjects get split 'heldout' and no pretraining windows
        ds.write_labels(store, adapter.task, labels)
        quarantined = ds.quarantined_files(state.catalog, adapter.name, problems)
        summary = {
            "dataset": adapter.name, "task": adapter.task, "root": params.root, "store": store.url,
            "version_id": store.version_id, "split_mode": params.split, "seed": params.seed,
            "tuev_mode": params.tuev_mode if adapter.name == "tuev" else None,
            "n_recordings": len(files), "n_ingested": state.counts.get("ingested", 0),
            "n_skipped_unchanged": len(files) - len(diff.to_ingest) + state.counts.get("skipped", 0),
            "n_labels": int(len(labels)), "n_heldout_registered": len(held),
            "counts": ds.split_counts(adapter, labels),
            "label_counts": ds.nested_counts(labels),
            "skips": ds.skip_summary(problems, skipped, quarantined),
            "paper_notes": adapter.paper_notes if params.split == "paper" else "",
            "tuev_conflicts": getattr(adapter, "conflicts", None),
            "wall_s": time.perf_counter() - t0,
        }
    create_markdown_artifact(render_markdown(summary), key=f"neurolm-dataset-{adapter.name}",
                             description=f"ingestion of {adapter.task}")
    return summary


def run_ingest_dataset(params: ds.DatasetIngestParams) -> dict:
    """Run :func:`ingest_dataset_flow` with the shared Prefect server and a Dask task runner."""
    from flows.runtime import dask_runner, prefect_server

    with prefect_server(), dask_runner(params.workers, params.dask_address) as runner:
        return ingest_dataset_flow.with_options(task_runner=runner)(params)
