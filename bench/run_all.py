"""`make bench`: run every benchmark once, each against its reference in the same run.

Each script prints its own ratios; this runner only sequences them and stops on the
first failure. `--full` uses the sizes quoted in BENCHMARKS.md (slow on 2 cores);
the default is a quicker pass of the same comparisons. Add `--only NAME` to run one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (quick args, full args, as quoted in BENCHMARKS.md)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "bench_ingest_cli": (["--quick"], ["--files", "24", "--minutes", "60", "--runs", "3", "--per-core", "--pinned"]),
    "bench_ingest_tables": (["--sizes", "1000,5000", "--repeat", "1"], []),
    "bench_ingest_throughput": (["--quick"], []),
    "bench_standardize": (["--quick"], []),
    "bench_readers": (["--quick"], ["--repeats", "5"]),
    "bench_store_codec": (["--hours", "0.1", "--reads", "100", "--e2e-minutes", "5", "--e2e-recordings", "2", "--repeat", "1"],
                          ["--hours", "0.5", "--reads", "400", "--e2e-minutes", "20", "--e2e-recordings", "3", "--repeat", "3"]),
    "bench_flow_overhead": (["--recordings", "8", "--minutes", "2", "--batch-size", "4"],
                            ["--recordings", "24", "--minutes", "6", "--batch-size", "8"]),
    "bench_rebuild_qc": (["--recordings", "4", "--minutes", "2"], ["--recordings", "12", "--minutes", "10", "--channels", "19"]),
    "bench_datasets": (["--files", "4", "--minutes", "2"], ["--files", "8", "--minutes", "10"]),
    "bench_tokenizer": (["--quick"], ["--quick"]),
    "bench_corpus_reader": (["--samples", "5000", "--naive-samples", "500"], ["--samples", "20000"]),
    "bench_tokenize": (["--config", "tiny", "--recordings", "6"],
                       ["--config", "all", "--recordings", "24", "--base-batches", "2", "--base-batch-size", "2"]),
    "bench_lm": (["--quick"], ["--quick"]),
    "bench_pretrain_feed": (["--samples", "3000", "--batches", "30"], ["--samples", "6000", "--batches", "60"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the sizes quoted in BENCHMARKS.md")
    parser.add_argument("--only", choices=sorted(BENCHES), action="append")
    args = parser.parse_args(argv)
    for name in args.only or BENCHES:
        quick, full = BENCHES[name]
        cmd = [sys.executable, str(HERE / f"{name}.py"), *(full if args.full else quick)]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            print(f"{name} failed", file=sys.stderr)
            return 1
        print(f"--- {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
