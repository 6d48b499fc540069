"""Tokenization throughput (tokens/s): the corpus job against a naive per-sample loop, same run.

What is measured:

- ``job``: the real pipeline (:func:`neurolm.corpus.run.tokenize_local`):
  store reads in a background thread, batched ``encode_codes`` under
  ``torch.inference_mode`` (bf16 autocast + pinned memory on CUDA), shard
  writes and commit markers. End to end, tokens committed per second.
- ``naive``: NeuroLM's way, one sample at a time (read → build_sample →
  encode_codes with batch 1 → collect), no prefetch, no batching. Same samples.
- ``model``: ``encode_codes`` alone on a prebuilt batch (the ceiling).

Configs: ``tiny`` end to end; ``base`` (the published 85 M-parameter
geometry, random weights; only its forward cost matters) model-only on CPU with a
few batches, end to end on CUDA when available. The 1.8 B-token extrapolation
is tokens / rate.

Usage::

    python bench/bench_tokenize.py --config tiny --recordings 6
    python bench/bench_tokenize.py --config base --base-batches 2 --base-batch-size 2
    python bench/bench_tokenize.py --config base --device cuda --base-batches 20 --base-batch-size 64
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from neurolm.corpus.fixtures import build_signal_store, save_random_tokenizer
from neurolm.corpus.run import tokenize_local
from neurolm.corpus.tokenize import get_tokenizer, prepare_job
from neurolm.tokenizer import build_sample
from storage.signal_store import SignalStore

CORPUS_TOKENS = 1.8e9  # NeuroLM pretraining corpus, PEERS §F


def naive(job, ckpt: str, device: str) -> tuple[int, float]:
    """One sample at a time, fp32, no prefetch: the reference."""
    tok = get_tokenizer(ckpt, device)
    store = SignalStore.open(job.store_url, version=job.store_version)
    n_tok = 0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for plan in job.plans:
            for s in plan.samples:
                sig = store.read_signal(s.recording_id, s.start, s.start + s.n_sec * 200)
                ch = store.recording_meta(s.recording_id)["ch_indices"]
                b = build_sample(sig, ch, max_tokens=tok.config.max_tokens)
                codes = tok.encode_codes(*(b[k][None].to(device) for k in ("x", "ch", "time", "mask")))
                valid = codes[0][b["mask"].to(device)].cpu().numpy()
                n_tok += int(valid.size)
    return n_tok, time.perf_counter() - t0


def model_only(cfg_name: str, device: str, batch_size: int, batches: int, precision: str) -> float:
    """encode_codes tokens/s on random full-length samples (19 ch, NeuroLM layout)."""
    from neurolm.tokenizer import VQTokenizer, preset

    overrides = {"text_embedding": "random:1000x768"} if cfg_name == "base" else {}
    cfg = preset(cfg_name, **overrides)
    torch.manual_seed(0)
    tok = VQTokenizer(cfg).to(device).eval()
    n_ch = 19
    n_sec = min(cfg.max_tokens // n_ch, cfg.time_rows)
    rng = np.random.default_rng(0)
    b = [build_sample(rng.standard_normal((n_ch, n_sec * 200)).astype(np.float32) * 0.3, list(range(n_ch)),
                      max_tokens=cfg.max_tokens) for _ in range(batch_size)]
    batch = [torch.stack([s[k] for s in b]).to(device) for k in ("x", "ch", "time", "mask")]
    valid = int(batch[3].sum())
    dev_type = torch.device(device).type
    with torch.inference_mode(), torch.autocast(device_type=dev_type, dtype=torch.bfloat16,
                                                enabled=precision == "bf16"):
        tok.encode_codes(*batch)  # warm-up
        if dev_type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(batches):
            tok.encode_codes(*batch)
        if dev_type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    return valid * batches / dt


def report(label: str, tokens: int, seconds: float) -> float:
    rate = tokens / seconds
    print(f"{label:44s} {tokens:9d} tokens {seconds:8.2f} s {rate:12.0f} tokens/s  "
          f"1.8 B tokens in {CORPUS_TOKENS / rate / 3600:9.1f} h")
    return rate


def bench_tiny(work: str, recordings: int, device: str, batch_size: int) -> None:
    store, ckpt = os.path.join(work, "store"), os.path.join(work, "tok")
    build_signal_store(store, n_recordings=recordings, n_ch=19, seed=0, datasets=("bench",), splits=("train",))
    save_random_tokenizer(ckpt, "tiny", seed=0)
    job = prepare_job(store, ckpt, os.path.join(work, "corpus"), shard_size=64, device=device)
    n, dt = naive(job, job.checkpoint, device)  # first: any page-cache warm-up favours the job, not the reference
    naive_rate = report(f"tiny naive per-sample ({device})", n, dt)
    t0 = time.perf_counter()
    out = tokenize_local(job, device=device, batch_size=batch_size)
    job_rate = report(f"tiny job ({device}, batch {batch_size}, shards+commit)", out["status"]["n_tokens"],
                      time.perf_counter() - t0)
    m = model_only("tiny", device, batch_size, 5, job.precision)
    print(f"{'tiny encode_codes only':44s} {m:12.0f} tokens/s")
    print(f"-> job / naive = {job_rate / naive_rate:.2f}x; job / model ceiling = {job_rate / m:.2f}")


def bench_base(work: str, device: str, batch_size: int, batches: int) -> None:
    precision = "bf16" if device.startswith("cuda") else "fp32"
    rate = model_only("base", device, batch_size, batches, precision)
    print(f"{'base encode_codes (' + device + ', ' + precision + ', batch ' + str(batch_size) + ')':44s} "
          f"{rate:12.0f} tokens/s  1.8 B tokens in {CORPUS_TOKENS / rate / 3600:9.1f} h")
    if device.startswith("cuda"):
        print(f"target >= 1,000,000 tokens/s on one H100: {'MET' if rate >= 1e6 else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["tiny", "base", "all"], default="all")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--recordings", type=int, default=6, help="19-ch recordings of one 53-s window (tiny)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--base-batch-size", type=int, default=2)
    ap.add_argument("--base-batches", type=int, default=2)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    work = args.dir or tempfile.mkdtemp(prefix="bench-tokenize-")
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, work {work}")
    if not torch.cuda.is_available():
        print("(no CUDA here: the GPU path — bf16 autocast, pinned memory, prefetch thread — is not measured)")
    if args.config in ("tiny", "all"):
        bench_tiny(work, args.recordings, args.device, args.batch_size)
    if args.config in ("base", "all"):
        bench_base(work, args.device, args.base_batch_size, args.base_batches)


if __name__ == "__main__":
    main()
