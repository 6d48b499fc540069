"""Tokenizer training throughput (patches/s), with reference variants measured in the same run.

Comparisons (each prints a ratio against its reference):

1. encoder attention: ``causal-by-second`` (our default) vs ``full`` (the reference's bidirectional mask);
2. conv-stem norm: ``conv_norm="valid-patches"`` (padding-aware) vs ``"reference"`` (plain ``nn.GroupNorm``);
3. eager vs ``torch.compile`` (when it compiles here);
4. ``base`` (paper size): a reduced forward/backward estimate on CPU; full size on CUDA when present.

A "patch" is one valid 1-s channel patch (a token). Steps are timed after warm-up steps;
variants are interleaved within each repeat and medians reported, so other load hits all alike. Usage:

    python bench/bench_tokenizer.py [--quick] [--device cpu|cuda] [--out bench/results_tokenizer.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurolm.tokenizer import VQTokenizer, preset  # noqa: E402
from neurolm.tokenizer.synthetic import rhythm_dataset  # noqa: E402


def make_batch(n: int, n_ch: int, seconds: int, max_tokens: int, device: str) -> dict[str, torch.Tensor]:
    ds = rhythm_dataset(n, n_ch=n_ch, seconds=seconds, max_tokens=max_tokens)
    return {k: torch.stack([ds[i][k] for i in range(n)]).to(device) for k in ds[0]}


def make_step(model, batch, compile_: bool = False):
    """A closure doing one forward+backward+AdamW step of ``model`` on ``batch``."""
    model.train()
    dev = batch["x"].device.type
    model.attach_text_embedding(torch.randn(1000, model.config.d_model, device=batch["x"].device))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    fwd = torch.compile(model) if compile_ else model
    text = torch.randint(0, 1000, (4, 64), device=batch["x"].device)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
            loss, _, _ = fwd(batch, alpha=0.5, text_ids=text)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def interleaved(variants: dict, batch, steps: int, warmup: int, repeats: int) -> dict[str, float]:
    """Median patches/s per variant; variants alternate within each repeat (A/B/C, A/B/C, ...) so
    load from other processes on a shared machine hits all of them alike."""
    fns = {}
    for name, fn in variants.items():
        for _ in range(warmup):
            fn()
        fns[name] = fn
    patches = int(batch["mask"].sum()) * steps
    rates: dict[str, list[float]] = {n: [] for n in fns}
    cuda = batch["x"].device.type == "cuda"
    for _ in range(repeats):
        for name, fn in fns.items():
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            if cuda:
                torch.cuda.synchronize()
            rates[name].append(patches / (time.perf_counter() - t0))
    return {n: statistics.median(r) for n, r in rates.items()}


def model_for(cfg, dev):
    torch.manual_seed(0)
    return VQTokenizer(cfg).to(dev)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="append a markdown section to this file")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    dev = args.device
    steps, warm, reps = (2, 1, 5) if args.quick else (5, 2, 7)
    results: dict[str, float] = {}
    ratios: list[tuple[str, float]] = []

    # tiny: 8 samples x (8 ch x 32 s) = 2048 patches per step, max_tokens 256
    tb = make_batch(8, 8, 32, 256, dev)
    tiny = {
        "tiny causal-by-second (default)": make_step(model_for(preset("tiny"), dev), tb),
        "tiny full attention (reference mask), valid-patches stem":
            make_step(model_for(preset("tiny", encoder_attention="full", conv_norm="valid-patches"), dev), tb),
        "tiny full + nn.GroupNorm stem (reference)":
            make_step(model_for(preset("tiny", encoder_attention="full", conv_norm="reference"), dev), tb),
    }
    if not args.no_compile:
        try:
            fn = make_step(model_for(preset("tiny"), dev), tb, compile_=True)
            fn()  # compile now, so a failure is reported here
            tiny["tiny causal-by-second, torch.compile"] = fn
        except Exception as exc:  # compile needs a C++ toolchain; report instead of failing
            print(f"torch.compile unavailable here: {type(exc).__name__}: {str(exc)[:120]}")
    r = interleaved(tiny, tb, steps, warm, reps)
    results.update(r)
    names = list(r)
    ratios += [("causal / full", r[names[0]] / r[names[1]]),
               ("full with valid-patches norm / full with nn.GroupNorm", r[names[1]] / r[names[2]])]
    if len(names) > 3:
        ratios.append(("compiled / eager (causal)", r[names[3]] / r[names[0]]))

    if dev == "cpu":  # base: a reduced batch (1 sample of 19 ch x 13 s = 247 patches), an estimate only
        bb, label = make_batch(1, 19, 13, 256, dev), "1x247 patches, CPU"
        base_cfg = dict(max_tokens=256)
    else:
        bb, label = make_batch(16, 19, 53, 1024, dev), "16x1007 patches, bf16"
        base_cfg = {}
    base = {
        f"base causal-by-second, {label}": make_step(model_for(preset("base", **base_cfg), dev), bb),
        f"base full attention, {label}":
            make_step(model_for(preset("base", encoder_attention="full", **base_cfg), dev), bb),
    }
    r = interleaved(base, bb, max(1, steps // 2), 1, 3 if dev == "cpu" else reps)
    results.update(r)
    names = list(r)
    ratios.append(("base causal / full", r[names[0]] / r[names[1]]))

    for n, v in results.items():
        print(f"{n:55s} {v:10.0f} patches/s")
    for n, v in ratios:
        print(f"ratio {n:50s} {v:6.3f}")
    if args.out:
        cmd = "python bench/bench_tokenizer.py " + " ".join(sys.argv[1:])
        lines = [f"\n## Tokenizer training throughput ({dev}, torch {torch.__version__}, "
                 f"{torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n",
                 f"Command: `{cmd}` (interleaved medians of {reps} repeats)\n",
                 "| variant | patches/s (fwd+bwd+AdamW) |", "|---|---|"]
        lines += [f"| {n} | {v:,.0f} |" for n, v in results.items()]
        lines += ["", "| ratio | value |", "|---|---|"] + [f"| {n} | {v:.3f} |" for n, v in ratios]
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
