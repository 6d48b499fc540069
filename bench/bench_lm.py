"""Stage-2 (NeuroLM on GPT-2) throughput, with the reference variants measured in the same run.

Comparisons (each with its ratio):

1. input mode: ``codes`` (our default: codebook vectors of the token corpus) vs ``features``
   (the original: the frozen tokenizer encoder runs in every step), tiny, one training step;
2. attention: our 4-D stair mask through SDPA vs plain causal SDPA (no mask, ``is_causal``),
   and vs eager attention with the additive float mask, same weights, forward + backward;
3. building the stair mask for a B-shaped batch (60 x 1024) from [B, L] indices;
4. on CUDA only: NeuroLM-B at batch 60 x 1024 in bf16, tokens/s and MFU (H100 dense bf16 peak
   989 TFLOPS unless ``--peak-tflops``), and peak memory; XL peak memory with ``--xl``;
5. ``--compare-modes``: tiny trained in ``codes`` and in ``features`` mode on the same small
   corpus (signal store → random tiny tokenizer → token corpus), same samples in the same order,
   EEG loss only; validation next-code loss / accuracy next to the unigram baseline.

Tokens are EEG tokens (valid 1-s channel patches). Variants alternate within each repeat and
medians are reported, so load from other processes hits all alike. Usage:

    python bench/bench_lm.py [--quick] [--device cpu|cuda] [--out bench/results_lm.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neurolm.lm.config import lm_preset  # noqa: E402
from neurolm.lm.mask import stair_mask  # noqa: E402
from neurolm.lm.model import NeuroLM, count_parameters  # noqa: E402
from neurolm.lm.synthetic import random_eeg_batch  # noqa: E402
from neurolm.lm.targets import next_second_codes  # noqa: E402
from neurolm.tokenizer.config import preset as tokenizer_preset  # noqa: E402


def model_for(cfg, dev):
    torch.manual_seed(0)
    m = NeuroLM(cfg).to(dev).train()
    if cfg.input_mode == "codes":
        m.set_codebook(torch.nn.functional.normalize(torch.randn(cfg.codebook_size, cfg.tokenizer.code_dim), dim=-1))
    return m


def batch_for(cfg, b, n_ch, n_sec, length, dev):
    x = random_eeg_batch(cfg, batch=b, n_ch=n_ch, n_sec=n_sec, length=length)
    x["targets"] = next_second_codes(x["codes"], x["ch"], x["time"], x["mask"])
    return {k: v.to(dev) for k, v in x.items()}


def train_step_fn(model, batch, dev, amp=False):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = model(batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def backbone_fn(model, batch, variant):
    """Forward + backward of the backbone alone with one attention variant (same inputs and weights)."""
    emb = model.eeg_embeds(batch).detach()
    pos, valid = batch["time"], batch["mask"]
    b, n = valid.shape
    causal_pos = torch.arange(n, device=valid.device).expand(b, n)

    def run():
        if variant == "stair":
            out = model.hidden(emb, pos, valid)
        else:  # plain causal: no mask at all, SDPA's is_causal path
            out = model.gpt(inputs_embeds=emb, position_ids=causal_pos, use_cache=False).last_hidden_state
        out.float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    return run


def interleaved(variants: dict, tokens: int, steps: int, warmup: int, repeats: int, cuda: bool) -> dict[str, float]:
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    rates: dict[str, list[float]] = {n: [] for n in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(steps):
                fn()
            if cuda:
                torch.cuda.synchronize()
            rates[name].append(tokens * steps / (time.perf_counter() - t0))
    return {n: statistics.median(r) for n, r in rates.items()}


def gpu_b(dev, peak_tflops, steps, xl):
    """NeuroLM-B (codes mode), 60 x 1024 EEG tokens, bf16 autocast; tokens/s, MFU, peak memory."""
    rows = []
    for name in ("B",) + (("XL",) if xl else ()):
        cfg = lm_preset(name)
        torch.cuda.reset_peak_memory_stats()
        m = model_for(cfg, dev)
        b = batch_for(cfg, 60 if name == "B" else 8, 19, 53, 1024, dev)
        fn = train_step_fn(m, b, dev, amp=True)
        r = interleaved({name: fn}, int(b["mask"].sum()), steps, 2, 3, True)[name]
        n_params = sum(p.numel() for p in m.parameters() if p.requires_grad)
        flops_tok = 6 * n_params + 12 * cfg.n_layer * cfg.n_embd * 1024  # nanoGPT/PaLM estimate
        mfu = r * flops_tok / (peak_tflops * 1e12)
        rows.append((name, r, mfu, torch.cuda.max_memory_allocated() / 2**30))
        del m, b, fn
        torch.cuda.empty_cache()
    return rows


def compare_modes(steps: int, dev: str) -> list[str]:
    import tempfile

    from neurolm.corpus.fixtures import build_signal_store, save_random_tokenizer
    from neurolm.corpus.run import tokenize_local
    from neurolm.corpus.tokenize import prepare_job
    from neurolm.lm.config import LMTrainConfig
    from neurolm.lm.data import EEGBatches, SignalPatches, attach_tokenizer, open_corpus
    from neurolm.lm.train import evaluate, make_optimizer, train_step, unigram_baseline

    d = tempfile.mkdtemp(prefix="bench-lm-")
    store, ckpt, corpus = f"{d}/store", f"{d}/tok", f"{d}/corpus"
    build_signal_store(store, n_recordings=6, n_ch=8, windows_per_recording=2, splits=("train", "train", "val"))
    save_random_tokenizer(ckpt, "tiny", seed=0)
    tokenize_local(prepare_job(store, ckpt, corpus, shard_size=64), batch_size=8)
    cfg = lm_preset("tiny")
    train, val = open_corpus(corpus, cfg)
    sig = SignalPatches(train.lineage)
    tcfg = LMTrainConfig(steps=steps, warmup_steps=max(1, steps // 10), lr=2e-3, min_lr=2e-4, batch_size=4,
                         text_batch_size=0)
    base = unigram_baseline(EEGBatches(train, 4, 256, access="index").epoch(0),
                            EEGBatches(val, 4, 256, shuffle=False, drop_last=False).epoch(0), cfg.codebook_size)
    rows = [f"| unigram baseline | {base['loss']:.3f} | {base['accuracy']:.3f} | — |"]
    for mode in ("codes", "features"):
        torch.manual_seed(0)
        model = NeuroLM(lm_preset("tiny", input_mode=mode), chan_init_std=0.02).to(dev)
        attach_tokenizer(model, ckpt, train.lineage)
        tb = EEGBatches(train, 4, 256, seed=0, signals=sig)
        vb = EEGBatches(val, 4, 256, shuffle=False, drop_last=False, signals=sig)
        opt = make_optimizer(model, tcfg)
        step, epoch, t0 = 0, 0, time.perf_counter()
        while step < steps:
            for b in tb.epoch(epoch):
                train_step(model, opt, step, tcfg, [b])
                step += 1
                if step >= steps:
                    break
            epoch += 1
        secs = time.perf_counter() - t0
        r = evaluate(model, vb.epoch(0))
        rows.append(f"| {mode} | {r['loss']:.3f} | {r['accuracy']:.3f} | {secs:.0f} s |")
    return [f"Input modes on the same data: {len(train)} train / {len(val)} val samples of 8 ch x 32 s, "
            f"random tiny tokenizer, {steps} steps of 4 samples, EEG loss only", "",
            "| tiny, val next-code | loss | accuracy | train time |", "|---|---|---|---|", *rows, ""]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=None, help="append a markdown section to this file")
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--xl", action="store_true", help="also XL peak memory (CUDA)")
    ap.add_argument("--compare-modes", type=int, default=0, metavar="STEPS",
                    help="also train tiny in both input modes for STEPS steps and compare on val")
    args = ap.parse_args()
    dev = args.device
    cuda = dev.startswith("cuda")
    steps, warm, reps = (1, 1, 3) if args.quick else (3, 1, 5)
    lines = []

    # 1. codes vs features, tiny: 4 samples of 8 ch x 32 s = 256 tokens (the tiny tokenizer's context)
    cfg_c = lm_preset("tiny")
    cfg_f = lm_preset("tiny", input_mode="features")
    b = batch_for(cfg_c, 4, 8, 32, 256, dev)
    tok = int(b["mask"].sum())
    r = interleaved({"codes": train_step_fn(model_for(cfg_c, dev), b, dev),
                     "features": train_step_fn(model_for(cfg_f, dev), b, dev)}, tok, steps, warm, reps, cuda)
    lines += ["| tiny training step, input mode | EEG tokens/s |", "|---|---|",
              f"| codes (ours, default) | {r['codes']:,.0f} |", f"| features (original: encoder every step) | "
              f"{r['features']:,.0f} |", f"| ratio codes / features | **{r['codes'] / r['features']:.2f}×** |", ""]

    # 2. stair mask vs plain causal vs eager, small backbone, 2 x 1007 tokens (19 ch x 53 s)
    cfg_s = lm_preset("tiny", n_layer=4, n_embd=128, n_head=4)
    m_s = model_for(cfg_s, dev)
    m_e = model_for(cfg_s.model_copy(update={"attn_implementation": "eager"}), dev)
    m_e.load_state_dict(m_s.state_dict())
    bb = batch_for(cfg_s, 2, 19, 53, 1024, dev)
    tok = int(bb["mask"].sum())
    r = interleaved({"stair": backbone_fn(m_s, bb, "stair"), "causal": backbone_fn(m_s, bb, "causal"),
                     "eager": backbone_fn(m_e, bb, "stair")}, tok, steps, warm, reps, cuda)
    lines += ["| backbone fwd+bwd, 2 x 1024 positions, 4 layers x 128 | tokens/s |", "|---|---|",
              f"| SDPA + 4-D stair mask (bool) | {r['stair']:,.0f} |",
              f"| SDPA plain causal (no mask) | {r['causal']:,.0f} |",
              f"| eager + additive float stair mask | {r['eager']:,.0f} |",
              f"| ratio stair / causal | **{r['stair'] / r['causal']:.2f}×** |",
              f"| ratio stair SDPA / eager | {r['stair'] / r['eager']:.2f}× |", ""]

    # 3. mask construction for a B-shaped batch
    big = batch_for(lm_preset("tiny"), 60, 19, 53, 1024, dev)
    times = []
    for _ in range(reps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        stair_mask(big["time"], big["mask"])
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    lines += [f"Stair mask for 60 x 1024 built on {dev}: {statistics.median(times) * 1e3:.1f} ms (median).", ""]

    if cuda:
        rows = gpu_b(dev, args.peak_tflops, steps, args.xl)
        lines += ["| GPU, bf16, codes mode | EEG tokens/s | MFU | peak memory |", "|---|---|---|---|"]
        lines += [f"| NeuroLM-{n} | {t:,.0f} | {mfu:.1%} | {mem:.1f} GiB |" for n, t, mfu, mem in rows]
        lines.append("")
    if args.compare_modes:
        lines += compare_modes(args.compare_modes, dev)
    counts = {n: count_parameters(lm_preset(n, input_mode="features",
                                            tokenizer=tokenizer_preset("base", encoder_attention="full")))
              for n in ("B", "L", "XL")}
    lines.append("Parameters (features mode, without wpe, frozen encoder included): "
                 + ", ".join(f"{n} {c / 1e6:,.1f} M" for n, c in counts.items()))

    head = (f"## bench_lm.py ({'quick' if args.quick else 'full'}, {dev}, torch {torch.__version__}, "
            f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)\n")
    text = head + "\n" + "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
