"""``neurolm train-tokenizer`` and ``neurolm tokenizer-import``: train the VQ tokenizer, import published weights.

The command builds the run's parameters and calls the flow's runner (imported
lazily, so the library stays Prefect-free), which prepares the run once: every
argument and input is checked before any work (ConfigError/StoreError → exit
code 2 with a one-line message); then the Prefect flow runs with a progress bar. Rerunning on
the same ``--out`` resumes from the last good checkpoint (``--no-resume`` refuses
to touch a directory that already holds checkpoints).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-tokenizer", help="train (or resume) the text-aligned VQ neural tokenizer",
                              description="Train NeuroLM's text-aligned VQ tokenizer on a signal store's windows; "
                                          "checkpoints, metrics and a loss curve go to --out.")
    p.add_argument("--store", required=True, help="signal store URL (path or fsspec URL)")
    p.add_argument("--config", default="tiny", help="tiny | base | path to a YAML config (default: tiny)")
    p.add_argument("--out", required=True, help="output directory for checkpoints and reports")
    p.add_argument("--steps", type=int, default=None, help="total optimisation steps (default: from config)")
    p.add_argument("--batch-size", type=int, default=None, help="samples per step per process (default: config)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="resume from the last good checkpoint in --out (default: yes)")
    p.add_argument("--split", default="train", help="store split to train on (default: train)")
    p.add_argument("--store-version", default=None, help="signal store version (default: current)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=None, help="data-order and init seed (default: config)")
    p.add_argument("--text-tokens", default=None, help="uint16 token file (nanoGPT train.bin) for the text side")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=cmd_train)

    i = subparsers.add_parser("tokenizer-import", help="import the published NeuroLM VQ.pt as a neurolm checkpoint",
                              description="Load the original VQ.pt (weights_only), report missing/unexpected keys "
                                          "and write a self-describing model.safetensors.")
    i.add_argument("weights", help="path to VQ.pt (a resume dict with key 'model', or a bare state dict)")
    i.add_argument("--out", required=True, help="output .safetensors file")
    i.add_argument("--n-heads", type=int, default=None, help="attention heads; default: the checkpoint's encoder_args "
                   "(guessed from the width, with a warning, when it stores none)")
    i.set_defaults(func=cmd_import)


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from flows.train_tokenizer import run_train_tokenizer
    from neurolm.tokenizer.params import TrainTokenizerParams

    params = TrainTokenizerParams(store=args.store, out=args.out, config=args.config, steps=args.steps,
                                  batch_size=args.batch_size, device=args.device, resume=args.resume,
                                  split=args.split, version=args.store_version, num_workers=args.num_workers,
                                  seed=args.seed, text_tokens=args.text_tokens)
    bar = None

    def on_event(ev: dict) -> None:
        nonlocal bar
        if args.json:
            return
        if ev["event"] == "prepared":
            print(f"tokenizer {ev['config']} ({ev['config_hash']}): {ev['windows']} {ev['split']} windows "
                  f"from {ev['store_url']} (version {ev['store_version']}), {ev['steps']} steps → {ev['out']}",
                  file=sys.stderr)
            bar = tqdm(total=ev["steps"], desc="train-tokenizer", unit="step", file=sys.stderr)
        elif bar is not None and ev["event"] == "step":
            bar.n = ev["step"]
            bar.refresh()
        elif bar is not None and ev["event"] == "log":
            bar.set_postfix(loss=f"{ev.get('total', 0):.3f}", usage=f"{ev.get('usage', 0):.2f}")

    try:
        summary = run_train_tokenizer(params, on_event=on_event)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        f = summary["final"]
        print(f"trained {summary['steps']} steps: loss {f.get('total', float('nan')):.4f} "
              f"(freq {f.get('freq', float('nan')):.4f}, raw {f.get('raw', float('nan')):.4f}), "
              f"codebook usage {f.get('usage', 0):.2f}; checkpoint {summary['checkpoint']} "
              f"(sha256 {summary['weights_sha256'][:12]}), loss curve {summary['loss_curve']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from neurolm.tokenizer.weights import import_published, model_weights, tokenizer_metadata

    overrides = {"n_heads": args.n_heads} if args.n_heads else {}
    model, report = import_published(args.weights, **overrides)
    save_file(model_weights(model), args.out, metadata=tokenizer_metadata(model.config))
    print(f"{report.summary()}\nwrote {args.out} (config hash {model.config.config_hash()}, "
          f"encoder_attention={model.config.encoder_attention}, conv_norm={model.config.conv_norm})")
    return 0
