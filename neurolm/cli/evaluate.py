"""``neurolm evaluate MODEL_DIR... --corpus C``: honest evaluation of tuned models, per task and split.

Builds :class:`neurolm.instruct.eval_params.EvaluateParams` and runs the Prefect flow (imported
lazily). ``--json`` prints one object per task and split (``task``, ``split``, ``n``,
``balanced_accuracy``, ``unparsable`` and the task's other metrics, full precision; NaN as null);
otherwise the paper-shaped tables. Input errors exit 2 with one line before any work.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from neurolm.instruct.eval_params import EvaluateParams

    f = EvaluateParams.model_fields
    p = subparsers.add_parser("evaluate", help="evaluate tuned models on a labeled corpus (honest metrics)",
                              description="Option scoring (class probabilities from answer log-likelihoods: real "
                                          "AUROC/AUC-PR, BAcc, kappa, W-F1) and greedy generation with an explicit "
                                          "unparsable count, per task and split; paper-shaped tables, a RESULTS "
                                          "table, confusion matrices and a bar chart in --out.")
    p.add_argument("models", nargs="+", metavar="MODEL_DIR", help=f["models"].description)
    p.add_argument("--corpus", required=True, help=f["corpus"].description)
    p.add_argument("--splits", default="val,test", help="comma-separated: " + f["splits"].description)
    p.add_argument("--tasks", default=None, help="comma-separated: " + f["tasks"].description)
    p.add_argument("--metrics", choices=("honest", "reference"), default="honest", help=f["metrics"].description)
    p.add_argument("--out", default=None, help=f["out"].description)
    p.add_argument("--corpus-version", default=None, help=f["corpus_version"].description)
    p.add_argument("--positions", choices=("own", "reference"), default=None, help=f["positions"].description)
    p.add_argument("--device", default="cpu", help=f["device"].description)
    p.add_argument("--batch-size", type=int, default=16, help=f["batch_size"].description)
    p.add_argument("--max-samples", type=int, default=None, help=f["max_samples"].description)
    p.add_argument("--bpe", default="auto", help=f["bpe"].description)
    syn = p.add_mutually_exclusive_group()
    syn.add_argument("--synthetic", dest="synthetic", action="store_true", default=None,
                     help="the corpus is synthetic: no published row")
    syn.add_argument("--real", dest="synthetic", action="store_false", help="the corpus is real data")
    p.add_argument("--json", action="store_true", help="print the per-task rows as JSON")
    p.set_defaults(func=cmd_evaluate)


def _split(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(s.strip() for s in text.split(",") if s.strip())


def json_rows(summary: dict) -> list[dict]:
    """The per-task rows of a summary without the confusion matrices, NaN as None (valid JSON)."""
    from neurolm.instruct.eval_report import finite

    return [finite({k: v for k, v in r.items() if not k.startswith("confusion")}) for r in summary["results"]]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from neurolm.instruct.eval_params import EvaluateParams

    params = EvaluateParams.build(models=tuple(args.models), corpus=args.corpus, splits=_split(args.splits),
                                  tasks=_split(args.tasks), metrics=args.metrics, out=args.out,
                                  corpus_version=args.corpus_version, positions=args.positions, device=args.device,
                                  batch_size=args.batch_size, max_samples=args.max_samples, bpe=args.bpe,
                                  synthetic=args.synthetic)
    from flows.evaluate import run_evaluate

    def on_event(ev: dict) -> None:
        if not args.json and ev["event"] == "task":
            print(f"{ev['task']} {ev['split']}: n={ev['n']}, BAcc {ev['balanced_accuracy']:.4f}, "
                  f"{ev['unparsable']} unparsable", file=sys.stderr)

    summary = run_evaluate(params, on_event=on_event)
    if args.json:
        print(json.dumps(json_rows(summary), indent=1))
        return 0
    with open(summary["files"]["tables_md"], encoding="utf-8") as f:
        print(f.read())
    print(f"outputs in {summary['out']} (report.md, results.json, results.parquet, figures)")
    for card in summary.get("model_cards") or []:
        print(f"model card: {card}")
    return 0
