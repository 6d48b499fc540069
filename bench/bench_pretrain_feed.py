"""Does the token-corpus reader keep stage 2 fed? EEG batches/s at NeuroLM-B shape vs what B consumes.

Measures, in CPU-seconds of one core, the exact path a pretraining run takes for its EEG batches
(:class:`neurolm.lm.data.EEGBatches`: block-shuffled streaming of the train split →
``collate_tokens`` to [60, 1024] → ``next_second_codes`` targets), on a synthetic NeuroLM-shaped
corpus (19/23 channels, ~1,010 tokens per sample, 8192 codes), and, for reference, the same
with ``access="index"`` (random access, what ``features`` mode uses).

What B consumes (one process = one GPU, 60 samples x 1024 tokens per step):

- reference §8 (NEUROLM_REFERENCE.md): ~0.7 s per step on 8 x A100 for 8 x 60 samples, i.e.
  ~86 samples/s per process;
- our goal on one H100 (40 % MFU of 989 bf16 TFLOPS, codes mode: no encoder pass): a step is
  ~6 x 170 M trainable parameters x 61,440 tokens ≈ 6.3e13 FLOPs → ~0.16 s → ~375 samples/s.

The issue asks for ≥ 10x what B consumes; the ratio is printed against the larger figure (375/s).

Usage: ``python bench/bench_pretrain_feed.py [--samples 6000] [--batches 60]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from neurolm.corpus.reader import TokenCorpus  # noqa: E402
from neurolm.corpus.synthetic import write_synthetic_corpus  # noqa: E402
from neurolm.lm.data import EEGBatches  # noqa: E402

B_BATCH = 60
B_SAMPLES_PER_S_REFERENCE = 8 * 60 / 0.7 / 8  # reference §8, per process
B_SAMPLES_PER_S_H100 = 60 / (6 * 170e6 * 60 * 1024 / (0.4 * 989e12))  # our goal on one H100


def rate(batches, n_batches: int) -> tuple[float, float]:
    """(samples, tokens) per CPU-second of this process over ``n_batches`` batches of the iterator.

    CPU time, not wall time: the shared machine's load does not slow the CPU time a loop needs.
    """
    n = tok = 0
    t0 = time.process_time()
    for i, b in enumerate(batches):
        n += int(b["mask"].shape[0])
        tok += int(b["mask"].sum())
        assert int((b["targets"] >= 0).sum()) > 0
        if i + 1 >= n_batches:
            break
    dt = time.process_time() - t0
    return n / dt, tok / dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--batches", type=int, default=60, help="batches of 60 timed per reader")
    ap.add_argument("--index-batches", type=int, default=3, help="batches timed with random access")
    ap.add_argument("--out", default=None, help="append the markdown section to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = tempfile.mkdtemp(prefix="bench-feed-")
    t0 = time.perf_counter()
    write_synthetic_corpus(f"{d}/corpus", args.samples, shard_size=1024, seed=0)
    built = time.perf_counter() - t0
    train = TokenCorpus.open(f"{d}/corpus", splits=("train",))
    n_b = min(args.batches, len(train) // B_BATCH)
    s_stream, t_stream = rate(EEGBatches(train, B_BATCH, 1024, seed=0).epoch(0), n_b)
    s_index, t_index = rate(EEGBatches(train, B_BATCH, 1024, seed=0, access="index").epoch(0), args.index_batches)
    need = max(B_SAMPLES_PER_S_REFERENCE, B_SAMPLES_PER_S_H100)
    lines = [
        f"## bench_pretrain_feed.py ({len(train)} train samples of ~1,010 tokens, built in {built:.0f} s; "
        f"one core, torch {torch.__version__})", "",
        "| EEG batches [60, 1024] with targets, per CPU-second | samples/s | tokens/s | vs B's need (375/s) |",
        "|---|---|---|---|",
        f"| `EEGBatches` stream (codes mode, what pretraining uses) | {s_stream:,.0f} | {t_stream:,.0f} | "
        f"**{s_stream / need:.1f}×** |",
        f"| `EEGBatches` random access (features mode's order) | {s_index:,.0f} | {t_index:,.0f} | "
        f"{s_index / need:.2f}× |", "",
        f"B consumes 60 samples per step and process: ~{B_SAMPLES_PER_S_REFERENCE:.0f} samples/s at the reference's "
        f"estimated 0.7 s/step (§8), ~{B_SAMPLES_PER_S_H100:.0f} samples/s on one H100 at 40 % MFU in codes mode.", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
