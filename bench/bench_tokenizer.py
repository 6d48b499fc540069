"""Tokenizer training throughput (patches/s), with reference variants measured in the same run.

Comparisons (each prints a ratio against its reference):

1. encoder attention: ``causal-by-second`` (our default) vs ``full`` (the reference's bidirectional mask);
2. conv-stem norm: our padding/causality-aware ``PatchGroupNorm`` vs plain ``nn.GroupNorm`` (the reference);
3. eager vs ``torch.compile`` (when it compiles here);
4. ``base`` (paper size): a reduced forward/backward estimate on CPU; full size on CUDA when present.

A "patch" is one valid 1-s channel patch (a token). Steps are timed after warm-up steps,
medians of repeated measurements. Usage:

    python bench/bench_tokenizer.py [--quick] [--device cpu|cuda] [--out bench/results_tokenizer.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurolm.tokenizer import VQTokenizer, preset  # noqa: E402
from neurolm.tokenizer.model import PatchGroupNorm  # noqa: E402
from neurolm.tokenizer.synthetic import rhythm_dataset  # noqa: E402


def make_batch(n: int, n_ch: int, seconds: int, max_tokens: int, device: str) -> dict[str, torch.Tensor]:
    ds = rhythm_dataset(n, n_ch=n_ch, seconds=seconds, max_tokens=max_tokens)
    return {k: torch.stack([ds[i][k] for i in range(n)]).to(device) for k in ds[0]}


@contextmanager
def plain_groupnorm():
    """Temporarily make the stem use nn.GroupNorm over all patches (the reference's behaviour)."""
    orig = PatchGroupNorm.forward
    PatchGroupNorm.forward = lambda self, x, valid=None, time=None, mode="full": torch.nn.GroupNorm.forward(self, x)
    try:
        yield
    finally:
        PatchGroupNorm.forward = orig


def time_steps(model, batch, steps: int, warmup: int, compile_: bool = False, repeats: int = 3) -> float:
    """Median patches/s of forward+backward+AdamW step."""
    model.train()
    model.attach_text_embedding(torch.randn(1000, model.config.d_model, device=batch["x"].device))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    fwd = torch.compile(model) if compile_ else model
    text = torch.randint(0, 1000, (4, 64), device=batch["x"].device)
    dev = batch["x"].device.type
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if dev == "cuda" else torch.autocast("cpu", enabled=False)

    def step():
        with amp:
            loss, _, _ = fwd(batch, alpha=0.5, text_ids=text)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    patches = int(batch["mask"].sum()) * steps
    rates = []
    for _ in range(repeats):
        if dev == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if dev == "cuda":
            torch.cuda.synchronize()
        rates.append(patches / (time.perf_counter() - t0))
    return statistics.median(rates)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="append a markdown section to this file")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    dev = args.device
    steps, warm = (3, 1) if args.quick else (8, 2)
    rows = []

    def run(name, cfg, batch, **kw):
        torch.manual_seed(0)
        r = time_steps(VQTokenizer(cfg).to(dev), batch, steps, warm, **kw)
        rows.append((name, r))
        print(f"{name:55s} {r:10.0f} patches/s", flush=True)
        return r

    # tiny: 8 samples × (8 ch × 32 s) = 2048 patches per step, max_tokens 256
    tb = make_batch(8, 8, 32, 256, dev)
    causal = run("tiny causal-by-second (default)", preset("tiny"), tb)
    full = run("tiny full attention (reference mask)", preset("tiny", encoder_attention="full"), tb)
    with plain_groupnorm():
        ref_norm = run("tiny full + nn.GroupNorm stem (reference)", preset("tiny", encoder_attention="full"), tb)
    ratios = [("causal / full", causal / full), ("full (PatchGroupNorm) / full (nn.GroupNorm)", full / ref_norm)]
    if not args.no_compile:
        try:
            comp = run("tiny causal-by-second, torch.compile", preset("tiny"), tb, compile_=True)
            ratios.append(("compiled / eager", comp / causal))
        except Exception as exc:  # compile needs a C++ toolchain; report instead of failing
            print(f"torch.compile unavailable here: {type(exc).__name__}: {str(exc)[:120]}")
            ratios.append(("compiled / eager", float("nan")))

    # base: on CPU a reduced batch (1 sample of 19 ch × 13 s = 247 patches) for an estimate
    if dev == "cpu":
        bb = make_batch(1, 19, 13, 256, dev)
        base = run("base (paper size) causal, 1×247 patches, CPU", preset("base", max_tokens=256), bb)
        base_full = run("base full attention, 1×247 patches, CPU", preset("base", max_tokens=256,
                                                                          encoder_attention="full"), bb)
        ratios.append(("base causal / full", base / base_full))
    else:
        bb = make_batch(16, 19, 53, 1024, dev)
        base = run("base causal, 16×1007 patches, bf16", preset("base"), bb)
        base_full = run("base full attention, 16×1007 patches, bf16", preset("base", encoder_attention="full"), bb)
        ratios.append(("base causal / full", base / base_full))
    for name, r in ratios:
        print(f"ratio {name:50s} {r:6.3f}")
    if args.out:
        cmd = "python bench/bench_tokenizer.py " + " ".join(sys.argv[1:])
        lines = [f"\n## Tokenizer training throughput ({dev}, torch {torch.__version__}, "
                 f"{torch.get_num_threads()} threads)\n", f"Command: `{cmd}`\n",
                 "| variant | patches/s |", "|---|---|"]
        lines += [f"| {n} | {r:,.0f} |" for n, r in rows]
        lines += ["", "| ratio | value |", "|---|---|"] + [f"| {n} | {r:.3f} |" for n, r in ratios]
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
