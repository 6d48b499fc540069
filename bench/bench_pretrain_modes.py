"""`codes` vs `features` input mode of stage 2, measured on the same data: val next-code loss/accuracy and tokens/s.

One small corpus for both modes: a signal store of synthetic EEG with brain states
(:func:`neurolm.synth.store.synth_signal_store`), a tiny tokenizer trained on it for
``--tokenizer-steps`` steps, the token corpus it makes. Then ``tiny`` is trained in each mode
from the same seed for ``--steps`` steps of ``--batch-size`` samples, EEG loss only, visiting
the same samples in the same order (``access="index"`` for both), and evaluated on the val split
next to the unigram and bigram baselines. Training tokens/s are EEG tokens per CPU-second of
the training loop (the features mode runs the frozen encoder in every step; codes mode does not).

Usage: ``python bench/bench_pretrain_modes.py [--steps 60] [--tokenizer-steps 60] [--out FILE]``
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from neurolm.corpus.run import tokenize_local  # noqa: E402
from neurolm.corpus.tokenize import prepare_job  # noqa: E402
from neurolm.lm.baselines import bigram_baseline, unigram_baseline  # noqa: E402
from neurolm.lm.config import LMTrainConfig, lm_preset  # noqa: E402
from neurolm.lm.data import EEGBatches, SignalPatches, attach_tokenizer, open_corpus  # noqa: E402
from neurolm.lm.model import NeuroLM  # noqa: E402
from neurolm.lm.train import evaluate, make_optimizer, train_step  # noqa: E402
from neurolm.synth.store import synth_signal_store  # noqa: E402
from neurolm.tokenizer.params import TrainTokenizerParams  # noqa: E402
from neurolm.tokenizer.run import train_tokenizer  # noqa: E402


def build(d: str, recordings: int, seconds: float, n_ch: int, tok_steps: int) -> tuple[str, str]:
    store, tok, corpus = f"{d}/store", f"{d}/tok", f"{d}/corpus"
    synth_signal_store(store, n_recordings=recordings, seconds=seconds, n_ch=n_ch, seed=0)
    train_tokenizer(TrainTokenizerParams(store=store, out=tok, config="tiny", steps=tok_steps, num_workers=0))
    tokenize_local(prepare_job(store, tok, corpus, shard_size=256), batch_size=16)
    return corpus, tok


def run_mode(mode: str, corpus: str, tok: str, steps: int, batch: int, lr: float) -> dict:
    cfg = lm_preset("tiny", input_mode=mode)
    train, val = open_corpus(corpus, cfg)
    sig = SignalPatches(train.lineage)  # both modes read the same samples in the same order (random access)
    tb = EEGBatches(train, batch, 256, seed=0, signals=sig)
    vb = EEGBatches(val, batch, 256, shuffle=False, drop_last=False, signals=sig)
    tcfg = LMTrainConfig(steps=steps, warmup_steps=max(1, steps // 12), lr=lr, min_lr=lr / 10, batch_size=batch,
                         text_batch_size=0)
    torch.manual_seed(0)
    model = NeuroLM(cfg, chan_init_std=0.02)
    attach_tokenizer(model, tok, train.lineage)
    opt = make_optimizer(model, tcfg)
    batches, epoch = [], 0
    while len(batches) < steps:  # read first: the timing is the training step alone
        batches += list(tb.epoch(epoch))
        epoch += 1
    tokens, cpu = 0, 0.0
    for step, b in enumerate(batches[:steps]):
        t0 = time.process_time()
        train_step(model, opt, step, tcfg, [b])
        cpu += time.process_time() - t0
        tokens += int(b["mask"].sum())
    return {**evaluate(model, vb.epoch(0)), "tokens_per_cpu_s": tokens / cpu, "epochs": steps / len(tb)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--tokenizer-steps", type=int, default=60)
    ap.add_argument("--recordings", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--out", default=None, help="append the markdown section to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    corpus, tok = build(tempfile.mkdtemp(prefix="bench-modes-"), args.recordings, args.seconds, args.channels,
                        args.tokenizer_steps)
    cfg = lm_preset("tiny")
    train, val = open_corpus(corpus, cfg)
    k = cfg.codebook_size

    def base_batches():
        return EEGBatches(train, args.batch_size, 256, seed=0).epoch(0), \
            EEGBatches(val, args.batch_size, 256, shuffle=False, drop_last=False).epoch(0)

    uni, big = unigram_baseline(*base_batches(), k), bigram_baseline(*base_batches(), k)
    res = {m: run_mode(m, corpus, tok, args.steps, args.batch_size, args.lr) for m in ("codes", "features")}
    c, f = res["codes"], res["features"]
    lines = [
        f"## bench_pretrain_modes.py (cpu, torch {torch.__version__}, {platform.machine()}, 1 thread; "
        f"{time.perf_counter() - t0:.0f} s)", "",
        f"Same corpus for both modes: {args.recordings} synthetic recordings x {args.seconds:.0f} s x "
        f"{args.channels} ch with brain states → tiny tokenizer trained {args.tokenizer_steps} steps → "
        f"{len(train)} train / {len(val)} val samples of ≤ 256 tokens. tiny, {args.steps} steps of "
        f"{args.batch_size} samples ({c['epochs']:.1f} epochs), lr {args.lr:g}, EEG loss only, same seed and "
        "sample order.", "",
        "| val next code | loss | accuracy | accuracy / unigram | train EEG tokens per CPU-s |", "|---|---|---|---|---|",
        f"| unigram baseline | {uni['loss']:.3f} | {uni['accuracy']:.4f} | 1.00× | — |",
        f"| bigram baseline (the channel's current code) | {big['loss']:.3f} | {big['accuracy']:.4f} | "
        f"{big['accuracy'] / uni['accuracy']:.2f}× | — |",
        f"| **codes** (ours) | {c['loss']:.3f} | {c['accuracy']:.4f} | {c['accuracy'] / uni['accuracy']:.2f}× | "
        f"{c['tokens_per_cpu_s']:,.0f} |",
        f"| **features** (original) | {f['loss']:.3f} | {f['accuracy']:.4f} | {f['accuracy'] / uni['accuracy']:.2f}× | "
        f"{f['tokens_per_cpu_s']:,.0f} |",
        f"| ratio codes / features | {c['loss'] / f['loss']:.3f} | {c['accuracy'] / f['accuracy']:.2f} | — | "
        f"**{c['tokens_per_cpu_s'] / f['tokens_per_cpu_s']:.2f}×** |", "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
