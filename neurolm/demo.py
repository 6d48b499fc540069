"""`make demo`: the most complete pipeline the project has, on a generated corpus, on CPU, offline.

Each step is the same `neurolm` command a user would type, run as a subprocess so
the demo exercises exactly the public interface:

1. ``neurolm synth``            a mixed-format corpus with malformed files
2. ``neurolm ingest``           Prefect flow on a local Dask cluster -> Zarr signal store
3. ``neurolm synth --dataset`` + ``neurolm ingest-dataset``   a labeled downstream dataset (HMC layout)
4. ``neurolm inspect``          store summary (recordings, hours, coverage, quarantine, labels)
5. ``neurolm train-tokenizer``  the tiny text-aligned VQ tokenizer
6. ``neurolm tokenize``         the discrete neural-token corpus
7. ``neurolm tokens inspect``   corpus summary
8. ``neurolm pretrain``         stage 2 (tiny NeuroLM on GPT-2) on the token corpus, a few steps; prints the val
                                next-code accuracy next to the unigram baseline
9. rerun of step 2: nothing new, nothing redone

The source corpus is ingested with split seed 1: its 12 synthetic subjects then fall 10 / 1 / 1 into
train / val / test (seed 0 gives no val subject, and pretraining validates on val).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _run(step: str, args: list[str]) -> None:
    cmd = [sys.executable, "-m", "neurolm", *args]
    print(f"\n=== {step}\n$ neurolm {shlex.join(args)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=os.environ.copy())
    if proc.returncode != 0:
        raise SystemExit(f"demo step failed ({step}): exit code {proc.returncode}")
    print(f"--- {step}: {time.perf_counter() - t0:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="working directory (recreated)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="tokenizer training steps")
    parser.add_argument("--lm-steps", type=int, default=60, help="pretraining steps of the tiny NeuroLM")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    os.environ.setdefault("PREFECT_HOME", str(out / "prefect_home"))
    src, store, corpus, ckpt, hmc = out / "source", out / "store", out / "corpus", out / "tokenizer", out / "hmc"
    workers = str(args.workers)

    t0 = time.perf_counter()
    _run("synthesize a mixed-format corpus",
         ["synth", str(src), "--recordings", "24", "--formats", "edf,bdf,gdf,fif,brainvision,eeglab",
          "--minutes", "2", "--malformed", "5", "--seed", "0", "--layout", "flat"])
    ingest = ["ingest", str(src), "--store", str(store), "--workers", workers, "--seed", "1"]
    _run("ingest (Prefect flow on local Dask)", ingest)
    _run("synthesize a labeled dataset (HMC layout)", ["synth", "--dataset", "hmc", str(hmc)])
    _run("ingest the labeled dataset", ["ingest-dataset", "hmc", str(hmc), "--store", str(store), "--workers", workers])
    _run("inspect the signal store", ["inspect", str(store)])
    _run("train the tiny tokenizer",
         ["train-tokenizer", "--store", str(store), "--config", "tiny", "--out", str(ckpt), "--steps", str(args.steps)])
    _run("tokenize the store", ["tokenize", "--store", str(store), "--tokenizer", str(ckpt), "--out", str(corpus)])
    _run("inspect the token corpus", ["tokens", "inspect", str(corpus)])
    _run("pretrain the tiny NeuroLM (stage 2)",
         ["pretrain", "--corpus", str(corpus), "--config", "tiny", "--out", str(out / "pretrain"),
          "--steps", str(args.lm_steps), "--warmup-steps", "5", "--lr", "3e-3", "--batch-size", "4",
          "--max-len", "256"])
    _run("rerun ingestion: nothing new", ingest)
    print(f"\nDemo finished in {time.perf_counter() - t0:.0f} s. Outputs under {out}.")
    print(f"See the flow runs: PREFECT_HOME={os.environ['PREFECT_HOME']} prefect flow-run ls   (or `make ui`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
