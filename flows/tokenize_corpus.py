"""The tokenization flow: a thin Prefect wrapper around :mod:`neurolm.corpus.tokenize`.

check inputs + plan (before any lock or write) → lock the corpus root →
record lineage, drop debris of killed writers → one Prefect task per *shard*
(each Dask worker takes whole shards: one writer per shard) → manifest,
``complete``, current pointer → summary artifact.

Why each choice:
- Coarse tasks: a shard is hundreds to thousands of samples; a Prefect task
  costs ~0.1 s, so per-sample tasks would drown in overhead (prefect#5977).
  Tasks get only their own ShardPlan and return a small dict (prefect#12668).
- No Prefect result caching: the corpus itself is the cache. A shard with a
  commit marker is skipped by the next run, whatever happened to Prefect's
  state; that survives ``kill -9``, which a cache written after the task
  returns does not.
- ``workers=0`` runs shards in the flow process: on a GPU one process should
  own the device (and the background reader thread overlaps reads and compute).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run

from flows.runtime import RunEvents
from neurolm.corpus.inspect import inspect_corpus, render_text
from neurolm.corpus.params import TokenizeParams
from neurolm.corpus.tokenize import ShardPlan, begin_job, finalize_job, prepare_job, tokenize_shard
from storage.lock import StoreLock

_events = RunEvents()  # progress for the CLI, in this process


def _emit(event: dict) -> None:
    """Send ``event`` to this process's listeners.

    A module-level function, not ``_events.emit``: Prefect ships the running flow's function to Dask
    by value with every task, and cloudpickle copies the globals it uses. A function is sent by
    reference; a bound method would send the RunEvents with its listeners (the CLI's tqdm bar).
    """
    _events.emit(event)


@task(name="tokenize-shard", cache_policy=NO_CACHE, retries=0)
def tokenize_shard_task(plan: ShardPlan, store_url: str, ckpt: str, corpus_url: str, device: str,
                        batch_size: int, store_version: str, precision: str, codebook_size: int) -> dict:
    """One whole shard: read, encode, write, commit (runs on a Dask worker)."""
    return tokenize_shard(plan, store_url, ckpt, corpus_url, device=device, batch_size=batch_size,
                          store_version=store_version, precision=precision, codebook_size=codebook_size)


@flow(name="neurolm-tokenize")
def tokenize_flow(params: TokenizeParams) -> dict:
    """Materialise the token corpus for ``params``; returns a summary dict (``nothing_to_do`` when complete)."""
    t0 = time.perf_counter()
    logger = get_run_logger()
    job = prepare_job(params.store, params.tokenizer, params.out, datasets=params.datasets, splits=params.splits,
                      shard_size=params.shard_size, store_version=params.store_version, device=params.device,
                      precision=params.precision)
    run_id = str(flow_run.get_id() or uuid.uuid4())
    _emit({"event": "plan", "version_id": job.version_id, "shards": len(job.plans), "samples": job.n_samples})
    results: list[dict] = []
    with StoreLock(job.corpus_url, f"tokenize {run_id}", timeout_s=params.lock_timeout_s):
        todo = begin_job(job)
        if not todo:
            logger.info("corpus version %s is complete: nothing to do", job.version_id)
        else:
            logger.info("version %s: %d of %d shards to tokenize", job.version_id, len(todo), len(job.plans))
            progress = create_progress_artifact(0.0, key="neurolm-tokenize-progress",
                                                description=f"{len(todo)} shards of {job.version_id}")
            futures = [tokenize_shard_task.submit(job.plans[k], job.store_url, job.checkpoint, job.corpus_url,
                                                  params.device, params.batch_size, job.store_version,
                                                  job.precision, job.codebook_size) for k in todo]
            for fut in as_completed(futures):
                r = fut.result()
                results.append(r)
                update_progress_artifact(progress, 100.0 * len(results) / len(todo),
                                         description=f"{len(results)}/{len(todo)} shards")
                logger.info("shard %d: %d samples, %d tokens in %.1f s", r["shard"], r["n_samples"],
                            r["n_tokens"], r["seconds"])
                _emit({"event": "shard", "done": len(results), "total": len(todo), **r})
        status = finalize_job(job)
    wall = time.perf_counter() - t0
    new_tokens = sum(r["n_tokens"] for r in results if not r["skipped"])
    summary = {
        "version_id": job.version_id, "corpus": job.corpus_url, "nothing_to_do": not todo,
        "shards_total": len(job.plans), "shards_done_now": sum(not r["skipped"] for r in results),
        "samples": status.get("n_samples"), "tokens": status.get("n_tokens"), "tokens_done_now": new_tokens,
        "wall_s": round(wall, 2), "tokens_per_s": round(new_tokens / wall, 1) if wall > 0 else None,
        "content_hash": status.get("content_hash"),
    }
    report = inspect_corpus(job.corpus_url, job.version_id, max_shards=64)
    head = (f"Run {run_id}: {summary['shards_done_now']} shards tokenized now "
            f"({new_tokens:,} tokens, {summary['tokens_per_s'] or 0:,.0f} tokens/s), "
            f"{len(job.plans) - summary['shards_done_now']} already committed.\n\n")
    create_markdown_artifact(head + render_text(report), key="neurolm-tokenize-report",
                             description=f"token corpus {job.version_id}")
    _emit({"event": "done", "summary": summary})
    return summary


def run_tokenize(params: TokenizeParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Run :func:`tokenize_flow` with the shared Prefect server and Dask (or in-process for ``workers=0``)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.runtime import dask_runner, prefect_server

    with _events.listening(on_event):
        with prefect_server():
            if params.n_workers == 0:
                return tokenize_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=1))(params)
            with dask_runner(params.n_workers, params.dask_address) as runner:
                return tokenize_flow.with_options(task_runner=runner)(params)
