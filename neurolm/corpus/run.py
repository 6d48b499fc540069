"""The token-corpus stage as one library call: :func:`tokenize_corpus` (the Prefect flow only wires it).

check inputs + plan (before any lock or write) → lock the corpus root → record
lineage, drop debris of killed writers → one work item per *shard* through a
mapper (each worker takes whole shards: one writer per shard) → manifest,
``complete``, current pointer → summary.

Shards are coarse on purpose: hundreds to thousands of samples each, so a
Prefect task's ~0.1 s of orchestration is noise (prefect#5977); a work item
gets only its own ShardPlan and returns a small dict (prefect#12668). The corpus
is its own cache: a shard with a commit marker is skipped by the next run.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from typing import Any

from neurolm.corpus.params import TokenizeParams
from neurolm.corpus.tokenize import TokenizeJob, begin_job, finalize_job, prepare_job, tokenize_shard
from neurolm.errors import NeurolmError
from neurolm.fanout import Mapper, Outcome, local_map
from neurolm.outputs import corpus_outputs
from storage.token_corpus import TokenCorpusStore


def _quiet(*_args, **_kwargs) -> None:
    return None


def shard_job(job: TokenizeJob, plan, device: str, batch_size: int) -> dict[str, Any]:
    """One shard of ``job`` (a work item: the plan travels, the job's other fields are small)."""
    return tokenize_shard(plan, job.store_url, job.checkpoint, job.corpus_url, device=device,
                          batch_size=batch_size, store_version=job.store_version, precision=job.precision,
                          codebook_size=job.codebook_size)


def run_job(job: TokenizeJob, mapper: Mapper = local_map, *, device: str = "cpu", batch_size: int = 16,
            log: Callable[[str], None] = _quiet, emit: Callable[[dict], None] = _quiet) -> dict[str, Any]:
    """Tokenize every shard of ``job`` not yet committed and finalize; the caller holds the corpus lock.

    Returns ``status`` (the version's), ``shards`` (this run's shard results) and ``done_now``.
    A failed shard leaves the version ``writing`` (never complete with a hole) and raises after
    every other shard has been committed; a rerun does only the missing ones.
    """
    todo = begin_job(job)
    if not todo:
        log(f"corpus version {job.version_id} is complete: nothing to do")
    else:
        log(f"version {job.version_id}: {len(todo)} of {len(job.plans)} shards to tokenize")
    results: list[dict] = []
    failed: list[Outcome] = []

    def on_outcome(out: Outcome) -> None:
        if not out.ok:
            failed.append(out)
            log(f"{out.label} FAILED: {out.error}")
            return
        r = out.value
        results.append(r)
        log(f"shard {r['shard']}: {r['n_samples']} samples, {r['n_tokens']} tokens in {r['seconds']:.1f} s")
        emit({"event": "shard", "done": len(results), "total": len(todo), **r})

    mapper(functools.partial(shard_job, job, device=device, batch_size=batch_size),
           [job.plans[k] for k in todo], on_outcome, [f"shard-{k:06d}" for k in todo])
    if failed:
        raise NeurolmError(f"{len(failed)} of {len(todo)} shards failed (first: {failed[0].label}: "
                           f"{failed[0].error}); the others are committed: rerun to do the missing ones")
    status = finalize_job(job)
    return {"status": status, "shards": results, "done_now": sum(not r["skipped"] for r in results),
            "nothing_to_do": not todo}


def tokenize_local(job: TokenizeJob, device: str = "cpu", batch_size: int = 16) -> dict[str, Any]:
    """Run a whole job in this process without locking (library use, benchmarks)."""
    return run_job(job, device=device, batch_size=batch_size)


def prepare_tokenize(params: TokenizeParams) -> TokenizeJob:
    """Check every input and plan the shards, before any lock or write (ConfigError/StoreError)."""
    if params.labeled:
        from neurolm.corpus.labeled import prepare_labeled_job

        return prepare_labeled_job(params.store, params.tokenizer, params.out, tasks=params.tasks,
                                   shard_size=params.shard_size, store_version=params.store_version,
                                   device=params.device, precision=params.precision)
    return prepare_job(params.store, params.tokenizer, params.out, datasets=params.datasets, splits=params.splits,
                       shard_size=params.shard_size, store_version=params.store_version, device=params.device,
                       precision=params.precision)


def tokenize_corpus(params: TokenizeParams, mapper: Mapper = local_map, *, job: TokenizeJob | None = None,
                    run_id: str = "", log: Callable[[str], None] = _quiet,
                    emit: Callable[[dict], None] = _quiet) -> dict[str, Any]:
    """Materialise the token corpus for ``params``; returns the run summary.

    ``job``: the run already prepared by :func:`prepare_tokenize` (prepared here when None).
    """
    t0 = time.perf_counter()
    run_id = run_id or str(uuid.uuid4())
    if job is None:
        job = prepare_tokenize(params)
    emit({"event": "plan", "version_id": job.version_id, "shards": len(job.plans), "samples": job.n_samples})
    with TokenCorpusStore(job.corpus_url).lock(f"tokenize {run_id}", timeout_s=params.lock_timeout_s):
        out = run_job(job, mapper, device=params.device, batch_size=params.batch_size, log=log, emit=emit)
    status, results = out["status"], out["shards"]
    wall = time.perf_counter() - t0
    new_tokens = sum(r["n_tokens"] for r in results if not r["skipped"])
    return {
        "run_id": run_id, "version_id": job.version_id, "corpus": job.corpus_url,
        "nothing_to_do": out["nothing_to_do"], "shards_total": len(job.plans), "shards_done_now": out["done_now"],
        "samples": status.get("n_samples"), "tokens": status.get("n_tokens"), "tokens_done_now": new_tokens,
        "wall_s": round(wall, 2), "tokens_per_s": round(new_tokens / wall, 1) if wall > 0 else None,
        "content_hash": status.get("content_hash"),
        "kind": job.lineage.kind, "tasks": list(job.lineage.tasks or ()),
        "quarantined_rows": int(job.lineage.info.get("n_quarantined_rows", 0)),
        "outputs": corpus_outputs(job.corpus_url, job.version_id),
    }
