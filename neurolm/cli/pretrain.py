"""``neurolm pretrain`` and ``neurolm import-weights``: stage 2 (NeuroLM on GPT-2), and the published weights.

``pretrain`` only builds :class:`neurolm.lm.params.PretrainParams` and runs the Prefect flow
(imported lazily: the library stays Prefect-free) with a progress bar; every input is checked
before any work (ConfigError/StoreError → exit code 2 with a one-line message). The same command
again continues an interrupted run, or does nothing when it finished; changed inputs train in a
new run folder under ``--out``. Under ``torchrun`` rank 0 runs the flow, the other ranks the
library call itself (one Prefect run per job).
"""

from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    from neurolm.lm.params import PretrainParams

    f = PretrainParams.model_fields
    p = subparsers.add_parser("pretrain", help="pretrain NeuroLM (stage 2) on a token corpus",
                              description="Multi-channel autoregression on GPT-2 over a token corpus, with a text "
                                          "LM batch every step; checkpoints, model, curves and report in a run "
                                          "folder under --out.")
    p.add_argument("--corpus", required=True, help=f["corpus"].description)
    p.add_argument("--config", default="tiny", help=f["config"].description)
    p.add_argument("--out", required=True, help=f["out"].description)
    p.add_argument("--input-mode", choices=("codes", "features"), default="codes", help=f["input_mode"].description)
    p.add_argument("--text", default=None, metavar="FILE.bin", help=f["text"].description)
    p.add_argument("--tokenizer", default=None, help=f["tokenizer"].description)
    p.add_argument("--corpus-version", default=None, help=f["corpus_version"].description)
    p.add_argument("--store", default=None, help=f["store"].description)
    p.add_argument("--device", default="cpu", help=f["device"].description)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=f["steps"].description)
    length.add_argument("--epochs", type=int, default=None, help=f["epochs"].description)
    for name in ("warmup_steps", "batch_size", "grad_accum", "text_batch_size", "text_seq_len", "seed",
                 "ckpt_every"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=None, help=f[name].description)
    p.add_argument("--lr", type=float, default=None, help=f["lr"].description)
    p.add_argument("--max-len", type=int, default=1024, help=f["max_len"].description)
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=cmd_pretrain)

    i = subparsers.add_parser("import-weights", help="import a published NeuroLM-B/L/XL .pt as a model folder",
                              description="Read the original nanoGPT-layout checkpoint (weights_only) into our model "
                                          "in features mode and write it with save_lm (GPT2Model.from_pretrained "
                                          "loads the backbone).")
    i.add_argument("weights", help="NeuroLM-B.pt, NeuroLM-L.pt or NeuroLM-XL.pt")
    i.add_argument("--vq", default=None, metavar="VQ.pt", help="the published tokenizer: supplies the codebook for "
                                                               "targets; its encoder must equal the checkpoint's")
    i.add_argument("--out", required=True, help="output model folder")
    i.set_defaults(func=cmd_import)


def _params(args: argparse.Namespace):
    from neurolm.lm.params import PretrainParams

    keys = ("corpus", "out", "config", "input_mode", "text", "tokenizer", "corpus_version", "store", "device", "steps",
            "epochs", "warmup_steps", "batch_size", "grad_accum", "text_batch_size", "text_seq_len", "lr", "seed",
            "ckpt_every", "max_len")
    return PretrainParams.build(**{k: getattr(args, k) for k in keys})


def cmd_pretrain(args: argparse.Namespace) -> int:
    params = _params(args)
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: the other ranks train without a Prefect run
        from neurolm.lm.run import pretrain

        pretrain(params)
        return 0
    from flows.lm_stage import run_with_bar
    from flows.pretrain import run_pretrain
    from neurolm.lm.run import baseline_line, versus_line

    def plan_line(ev: dict) -> str:
        return (f"run folder {ev['run_dir']}: steps {ev['start']} → {ev['total']} "
                f"({ev['steps_per_epoch']} per epoch); val next-code baselines: {baseline_line(ev['baseline'])}")

    def val_line(ev: dict, plan: dict) -> str:
        return (f"step {ev['step']}: val next-code loss {ev['loss']:.4f}, accuracy {ev['accuracy']:.4f}; "
                f"{versus_line(ev, plan['baseline'])}")

    summary = run_with_bar(run_pretrain, params, "pretrain", plan_line, val_line, quiet=args.json)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    v, b = summary.get("val") or {}, summary.get("baseline") or {}
    head = ("finished earlier with the same inputs: nothing to do" if summary["nothing_to_do"]
            else f"trained {summary['steps_done_now']} steps ({summary['steps']} in all)")
    print(f"{head}; val next-code accuracy {v.get('accuracy', float('nan')):.4f}, loss {v.get('loss', float('nan')):.4f}: "
          f"{versus_line(v, b)}")
    print(f"baselines on val: {baseline_line(b)}")
    print(f"model {summary['outputs']['model']}, report {summary['files']['report']}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from neurolm.lm.io import save_lm
    from neurolm.lm.weights import import_published

    model, report, codebook = import_published(args.weights, vq_path=args.vq)
    save_lm(model, args.out)
    if codebook is not None:
        from safetensors.torch import save_file

        save_file({"codebook": codebook.contiguous()}, os.path.join(args.out, "codebook.safetensors"))
    cfg = model.config
    print(f"{report.summary()}\nwrote {args.out}: {cfg.name} in features mode (config hash {cfg.config_hash()}, "
          f"encoder conv_norm={cfg.tokenizer.conv_norm})" + ("; codebook.safetensors from the VQ" if codebook is not None
                                                               else ""))
    return 0
