"""``neurolm tokenize`` and ``neurolm tokens inspect``: build and look at a token corpus.

``tokenize`` only builds the run's parameters (a bad argument: ConfigError →
exit code 2 with a one-line message) and runs the Prefect flow (imported
lazily: the library stays Prefect-free); the flow's runner prepares the run
once and fails on bad inputs (StoreError/ConfigError → exit code 2) before a
Prefect server starts. Rerunning on a complete
corpus prints "nothing to do"; rerunning after a crash resumes at the first
uncommitted shard.
"""

from __future__ import annotations

import argparse
import json
import sys

from neurolm.corpus.params import TokenizeParams, parse_list


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tokenize", help="materialise the discrete neural-token corpus of a signal store",
                              description="Tokenize a signal store's windows with a frozen VQ tokenizer into a "
                                          "versioned, resumable token corpus; with --labeled, every labeled window "
                                          "of the store (one sample each, with its task, label and split).")
    p.add_argument("--store", required=True, help="signal store URL (path or fsspec URL)")
    p.add_argument("--tokenizer", required=True, help="tokenizer run dir, checkpoint dir or weights file")
    p.add_argument("--out", required=True, help="token corpus root URL")
    p.add_argument("--datasets", default=None, help="comma-separated datasets (default: all)")
    p.add_argument("--splits", default=None,
                   help="comma-separated splits, e.g. train,val (default: train,val,test; heldout only by name)")
    p.add_argument("--labeled", action="store_true",
                   help="a labeled corpus: every LABELS window (train/val/test) as one sample, with its task and label")
    p.add_argument("--tasks", default=None, help="with --labeled: comma-separated LABELS tasks, e.g. HMC,TUAB "
                                                 "(default: all tasks in the store)")
    p.add_argument("--store-version", default=None, help="signal store version (default: current)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: fp32 on CPU, bf16 autocast on CUDA")
    p.add_argument("--workers", type=int, default=None,
                   help="Dask worker processes (0: in this process; default 2 on CPU, 0 on CUDA)")
    p.add_argument("--shard-size", type=int, default=1024, help="samples per shard (default 1024)")
    p.add_argument("--batch-size", type=int, default=16, help="samples per tokenizer forward pass")
    p.add_argument("--dask-address", default=None, help="existing Dask scheduler address")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(func=cmd_tokenize)

    t = subparsers.add_parser("tokens", help="token corpus tools (inspect)")
    tsub = t.add_subparsers(dest="tokens_command", metavar="SUBCOMMAND")
    tsub.required = True
    i = tsub.add_parser("inspect", help="summarise a token corpus: sizes, splits, code usage, lineage")
    i.add_argument("corpus", help="token corpus root (or a version directory)")
    i.add_argument("--version", default=None, help="corpus version (default: current)")
    i.add_argument("--top", type=int, default=10, help="how many most frequent codes to list")
    i.add_argument("--max-shards", type=int, default=None, help="count codes over at most this many shards")
    i.add_argument("--verify", action="store_true", help="re-check every shard's sha256 against its commit marker")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_inspect)


def cmd_tokenize(args: argparse.Namespace) -> int:
    params = TokenizeParams.build(
        store=args.store, tokenizer=args.tokenizer, out=args.out, datasets=parse_list(args.datasets),
        splits=parse_list(args.splits), store_version=args.store_version, device=args.device,
        precision=args.precision, workers=args.workers, shard_size=args.shard_size, batch_size=args.batch_size,
        dask_address=args.dask_address, labeled=args.labeled, tasks=parse_list(args.tasks))
    from flows.tokenize_corpus import run_tokenize

    def on_event(ev: dict) -> None:
        if args.json:
            return
        if ev["event"] == "plan":
            print(f"version {ev['version_id']}: {ev['samples']} samples in {ev['shards']} shards", file=sys.stderr)
        elif ev["event"] == "shard":
            print(f"  shard {ev['shard']} ({ev['done']}/{ev['total']}): {ev['n_samples']} samples, "
                  f"{ev['n_tokens']} tokens, {ev['seconds']:.1f} s", file=sys.stderr)

    summary = run_tokenize(params, on_event=on_event)
    if args.json:
        print(json.dumps(summary, indent=1))
    elif summary["nothing_to_do"]:
        print(f"nothing to do: corpus version {summary['version_id']} is complete")
    else:
        print(f"corpus version {summary['version_id']}: {summary['samples']:,} samples, {summary['tokens']:,} tokens "
              f"({summary['shards_done_now']} of {summary['shards_total']} shards tokenized now, "
              f"{summary['tokens_per_s'] or 0:,.0f} tokens/s) at {summary['corpus']}")
    if not args.json and summary.get("quarantined_rows"):
        print(f"{summary['quarantined_rows']} labeled window(s) quarantined (reasons in the version's lineage.json, "
              "info.quarantined_rows; `neurolm tokens inspect` lists them)", file=sys.stderr)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from neurolm.corpus.inspect import inspect_corpus, render_text

    summary = inspect_corpus(args.corpus, version=args.version, top=args.top, max_shards=args.max_shards,
                             verify=args.verify)
    print(json.dumps(summary, indent=1, default=str) if args.json else render_text(summary))
    return 0
