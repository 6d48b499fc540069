"""Orchestration overhead of the ingestion flow, and its scaling from 1 to 2 Dask workers.

Reference implementation in the same run: ``neurolm.ingest.process_batch`` over
the same files in ONE process (no Prefect, no Dask). Then the Prefect flow on a
local Dask cluster with 1 and with 2 worker processes, each into a fresh store.

- orchestration overhead (1 worker): the busy span (first file started on a
  worker -> last file finished, from the workers' own clocks) divided by the
  compute seconds the worker spent on files, minus 1. This is the per-task
  cost (submission, Prefect state updates, result transfer) and excludes the
  once-per-run start-up (spawning workers, importing Prefect/MNE/SciPy in
  them), which is reported separately as "first batch done after". Target <= 10 %.
- parallel efficiency (2 workers): compute / (2 x busy span).
- end-to-end speedup direct / flow(2) and scaling flow(1) / (2 x flow(2)),
  start-up included (pessimistic on small corpora).

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
    """process_batch in a FRESH process (imports done, filter kernels cold, as in a new Dask worker)."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--direct", src, store_url, "--batch-size", str(batch_size)],
                         check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return res["seconds"], res["ingested"]


def _direct_here(src: str, store_url: str, batch_size: int) -> tuple[float, int]:
    from neurolm.ingest import IngestState, discover, make_batches, open_store, process_batch
    from neurolm.readers import read_recording  # noqa: F401  (imports outside the timing)
    from neurolm.standardize import standardize  # noqa: F401

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
    spans: list[tuple[float, float, float]] = []  # per batch: worker start, worker end (epoch), compute s

    def on_event(ev: dict) -> None:
        marks.setdefault(ev["event"], time.perf_counter())
        if ev["event"] == "batch":
            spans.append((ev["t_start"], ev["t_end"], ev["worker_seconds"]))

    t0 = time.perf_counter()
    s = run_ingest(make_params(source=src, store=store_url, dataset="bench", workers=workers,
                               batch_size=batch_size), on_event)
    total = time.perf_counter() - t0
    # Busy span: from the first file started on any worker (workers up, imports done) to the last
    # file finished. compute / (workers x span) is the share of worker time spent on files.
    span = max(e for _, e, _ in spans) - min(st for st, _, _ in spans)
    compute = sum(c for _, _, c in spans)
    return total, s["ingested"], marks.get("batch", t0) - marks.get("plan", t0), span, compute


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--direct", nargs=2, metavar=("SRC", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.direct:
        import json

        seconds, n = _direct_here(args.direct[0], args.direct[1], args.batch_size)
        print(json.dumps({"seconds": seconds, "ingested": n}))
        return
    tmp = Path(tempfile.mkdtemp(prefix="neurolm-bench-flow-"))
    os.environ.setdefault("PREFECT_HOME", str(tmp / "prefect"))
    try:
        from flows.runtime import prefect_server
        from neurolm.synth import synth_corpus

        corpus = synth_corpus(tmp / "src", n_recordings=args.recordings, minutes=args.minutes, n_malformed=0,
                              seed=0, formats=("edf", "bdf", "gdf"))
        hours = sum(f.duration_s for f in corpus.good) / 3600
        t_direct, n_direct = _direct(corpus.root, str(tmp / "direct"), args.batch_size)
        with prefect_server():
            t1, n1, first1, w1, c1 = _flow(corpus.root, str(tmp / "flow1"), 1, args.batch_size)
            t2, n2, first2, w2, c2 = _flow(corpus.root, str(tmp / "flow2"), 2, args.batch_size)
        assert n_direct == n1 == n2 == args.recordings, (n_direct, n1, n2)
        load = os.getloadavg()[0]
        print(f"corpus: {args.recordings} recordings, {hours:.2f} h EEG, batch size {args.batch_size}; "
              f"cpus {os.cpu_count()}, load average {load:.1f}")
        print(f"direct process_batch, 1 fresh process: {t_direct:7.2f} s ({hours * 3600 / t_direct:6.0f} x real time)")
        print(f"Prefect flow, 1 Dask worker          : {t1:7.2f} s (first batch done after {first1:.1f} s)")
        print(f"Prefect flow, 2 Dask workers         : {t2:7.2f} s (first batch done after {first2:.1f} s)")
        print(f"orchestration overhead, 1 worker (busy span / worker compute - 1): {100 * (w1 / c1 - 1):+.1f} %"
              "  (target <= 10 %)")
        print(f"parallel efficiency, 2 workers (compute / (2 x busy span)): {c2 / (2 * w2):.2f}; "
              f"1 worker: {c1 / w1:.2f}")
        print(f"end to end: speedup direct/flow2 {t_direct / t2:.2f}x, scaling flow1/(2*flow2) {t1 / (2 * t2):.2f} "
              "(include the per-run start-up: worker processes + imports)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
