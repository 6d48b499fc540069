"""``neurolm tune``: instruction tuning (stage 3) of a pretrained model on a labeled token corpus.

Builds :class:`neurolm.instruct.params.TuneParams` and runs the Prefect flow (imported lazily: the
library stays Prefect-free) with a progress bar; every input is checked before any work
(ConfigError/StoreError → exit code 2 with a one-line message). The same command again continues an
interrupted run or does nothing when it finished. Under ``torchrun`` rank 0 runs the flow, the other
ranks the library call itself.
"""

from __future__ import annotations

import argparse
import json
import os

_INT_OPTIONS = ("warmup_steps", "batch_size", "grad_accum", "text_batch_size", "text_seq_len", "seed", "ckpt_every",
                "eeg_len", "keep_last")


def _h(fields, name: str) -> str:
    """A field's description as argparse help ("%" escaped)."""
    return fields[name].description.replace("%", "%%")


def register(subparsers: argparse._SubParsersAction) -> None:
    from neurolm.instruct.params import TuneParams

    f = TuneParams.model_fields
    p = subparsers.add_parser("tune", help="instruction-tune NeuroLM on a labeled token corpus (all tasks mixed)",
                              description="Multi-task instruction tuning as the original (EEG + [SEP] + prompt + "
                                          "answer, loss on the answer tokens, a text LM batch every step); "
                                          "checkpoints, tuned model, curves and report in a run folder under --out.")
    p.add_argument("--corpus", required=True, help=_h(f, "corpus"))
    p.add_argument("--init", required=True, help=_h(f, "init"))
    p.add_argument("--out", required=True, help=_h(f, "out"))
    p.add_argument("--corpus-version", default=None, help=_h(f, "corpus_version"))
    p.add_argument("--positions", choices=("own", "reference"), default="own", help=_h(f, "positions"))
    p.add_argument("--temperature", type=float, default=1.0, help=_h(f, "temperature"))
    p.add_argument("--preset", choices=("auto", "original", "tiny"), default="auto", help=_h(f, "preset"))
    p.add_argument("--text", default=None, metavar="FILE.bin", help=_h(f, "text"))
    p.add_argument("--bpe", default="auto", help=_h(f, "bpe"))
    p.add_argument("--store", default=None, help=_h(f, "store"))
    p.add_argument("--device", default="cpu", help=_h(f, "device"))
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=_h(f, "steps"))
    length.add_argument("--epochs", type=int, default=None, help=_h(f, "epochs"))
    for name in _INT_OPTIONS:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=f[name].default, help=_h(f, name))
    p.add_argument("--lr", type=float, default=None, help=_h(f, "lr"))
    p.add_argument("--min-lr", type=float, default=None, help=_h(f, "min_lr"))
    p.add_argument("--no-evaluate", dest="evaluate", action="store_false", help="do not evaluate at the end")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=cmd_tune)


def _params(args: argparse.Namespace):
    from neurolm.instruct.params import TuneParams

    keys = ("corpus", "init", "out", "corpus_version", "positions", "temperature", "preset", "text", "bpe", "store",
            "device", "steps", "epochs", "lr", "min_lr", "evaluate", *_INT_OPTIONS)
    return TuneParams.build(**{k: getattr(args, k) for k in keys})


def cmd_tune(args: argparse.Namespace) -> int:
    params = _params(args)
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: the other ranks train without a Prefect run
        from neurolm.instruct.run import tune

        tune(params)
        return 0
    from flows.lm_stage import run_with_bar
    from flows.tune import run_tune

    def plan_line(ev: dict) -> str:
        return (f"run folder {ev['run_dir']}: steps {ev['start']} → {ev['total']} ({ev['steps_per_epoch']} per "
                f"epoch); train samples per task {ev['tasks']}")

    def val_line(ev: dict, plan: dict) -> str:
        per = ", ".join(f"{k} {v:.3f}" for k, v in ev["answer_accuracy_per_task"].items())
        return f"step {ev['step']}: val instruction loss {ev['loss']:.4f}; answer accuracy {per}"

    summary = run_with_bar(run_tune, params, "tune", plan_line, val_line, quiet=args.json)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
        return 0
    v, b = summary.get("val") or {}, summary.get("baseline") or {}
    head = ("finished earlier with the same inputs: nothing to do" if summary["nothing_to_do"]
            else f"tuned {summary['steps_done_now']} steps ({summary['steps']} in all)")
    per = ", ".join(f"{k} {a:.3f} (majority {b.get(k, float('nan')):.3f})"
                    for k, a in (v.get("answer_accuracy_per_task") or {}).items())
    print(f"{head}; val answer accuracy {per}; model {summary['outputs']['model']}, "
          f"report {summary['files']['report']}")
    return 0
