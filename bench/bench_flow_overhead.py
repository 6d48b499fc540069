"""Orchestration overhead of the ingestion flow, and its scaling from 1 to 2 Dask workers.

Reference implementation in the same run: ``neurolm.ingest.process_batch`` over
the same files in ONE process (no Prefect, no Dask). Then the Prefect flow on a
local Dask cluster with 1 and with 2 worker processes, each into a fresh store.

- fixed cost per run = flow(1 worker, ONE file) - direct(ONE file): starting the
  Dask worker processes and importing Prefect/MNE/SciPy in them, flow-run
  bookkeeping, artifacts. Paid once per run, whatever the archive size.
- marginal overhead = (flow1(N) - flow1(1)) / (direct(N) - direct(1)) - 1: the
  per-file orchestration cost at the same parallelism (task submission, result
  transfer, incremental table writes). This is what grows with the archive and
  what the <= 10 % target is about.
- speedup = direct(N) / flow2(N); scaling efficiency = flow1(N) / (2 x flow2(N)),
  both including the fixed cost (pessimistic on small corpora).

The Prefect server is started once beforehand, as in a deployment. Usage:

    .venv/bin/python bench/bench_flow_overhead.py [--recordings 16] [--minutes 2] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _direct(src: str, store_url: str, batch_size: int) -> tuple[float, int]:
    from neurolm.ingest import IngestState, discover, make_batches, open_store, process_batch

    t0 = time.perf_counter()
    store = open_store(store_url)
    state = IngestState.load(store, "bench-direct")
    diff = state.plan(discover(src, "bench"), "bench")
    for batch in make_batches(diff.to_ingest, batch_size):
        state.add(process_batch(batch, store.url, store.version_id, run_id="bench-direct"))
    state.finalize()
    return time.perf_counter() - t0, state.counts["ingested"]


def _flow(src: str, store_url: str, workers: int, batch_size: int) -> tuple[float, int, float]:
    from flows.ingest import run_ingest
    from neurolm.ingest import make_params

    marks: dict[str, float] = {}

    def on_event(ev: dict) -> None:
        marks.setdefault(ev["event"], time.perf_counter())

    t0 = time.perf_counter()
    s = run_ingest(make_params(source=src, store=store_url, dataset="bench", workers=workers,
                               batch_size=batch_size), on_event)
    total = time.perf_counter() - t0
    return total, s["ingested"], marks.get("batch", t0) - marks.get("plan", t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="neurolm-bench-flow-"))
    os.environ.setdefault("PREFECT_HOME", str(tmp / "prefect"))
    try:
        from flows.runtime import prefect_server
        from neurolm.synth import synth_corpus

        corpus = synth_corpus(tmp / "src", n_recordings=args.recordings, minutes=args.minutes, n_malformed=0,
                              seed=0, formats=("edf", "bdf", "gdf"))
        hours = sum(f.duration_s for f in corpus.good) / 3600
        one = tmp / "one"
        first = corpus.good[0].path
        (one / first).parent.mkdir(parents=True)
        shutil.copy2(Path(corpus.root) / first, one / first)
        _direct(corpus.root, str(tmp / "warm"), args.batch_size)  # warm imports and caches, like a worker
        t_d1, _ = _direct(str(one), str(tmp / "direct1"), args.batch_size)
        t_direct, n_direct = _direct(corpus.root, str(tmp / "direct"), args.batch_size)
        with prefect_server():
            t_f1_one, _, _ = _flow(str(one), str(tmp / "flow1one"), 1, args.batch_size)
            t1, n1, first1 = _flow(corpus.root, str(tmp / "flow1"), 1, args.batch_size)
            t2, n2, first2 = _flow(corpus.root, str(tmp / "flow2"), 2, args.batch_size)
        assert n_direct == n1 == n2 == args.recordings, (n_direct, n1, n2)
        load = os.getloadavg()[0]
        fixed = t_f1_one - t_d1
        marginal = (t1 - t_f1_one) / (t_direct - t_d1) - 1
        print(f"corpus: {args.recordings} recordings, {hours:.2f} h EEG, batch size {args.batch_size}; "
              f"cpus {os.cpu_count()}, load average {load:.1f}")
        print(f"direct process_batch, 1 process : {t_direct:7.2f} s  ({hours * 3600 / t_direct:7.0f} x real time); "
              f"one file {t_d1:.2f} s")
        print(f"Prefect flow, 1 Dask worker     : {t1:7.2f} s  (first batch after {first1:.1f} s); one file {t_f1_one:.2f} s")
        print(f"Prefect flow, 2 Dask workers    : {t2:7.2f} s  (first batch after {first2:.1f} s)")
        print(f"fixed cost per run (cluster start, worker imports, flow bookkeeping): {fixed:.1f} s")
        print(f"marginal orchestration overhead per file, 1 worker: {100 * marginal:+.1f} %  (target <= 10 %)")
        print(f"speedup direct/flow2: {t_direct / t2:.2f}x; scaling efficiency flow1/(2*flow2): {t1 / (2 * t2):.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
