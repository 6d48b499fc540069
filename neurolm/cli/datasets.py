"""`neurolm ingest-dataset NAME ROOT --store STORE`: one downstream dataset → recordings + labels.

Runs `flows/ingest_dataset.py` (Prefect + Dask, resumable, incremental,
quarantining) and prints our per-split sample counts next to the paper's,
with the reason every skipped file and event was skipped.
"""

from __future__ import annotations

import argparse
import json

DATASET_HELP = "tuab, tuev, seed, hmc, workload or tusl"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest-dataset", help="ingest a downstream dataset (TUAB, TUEV, SEED, HMC, Workload, TUSL) with labels",
        description=__doc__.splitlines()[0],
    )  # fmt: skip
    p.add_argument("name", metavar="NAME", help=DATASET_HELP)
    p.add_argument("root", metavar="ROOT", help="the dataset's folder as downloaded")
    p.add_argument("--store", required=True, help="signal store path or URL (created when absent)")
    p.add_argument("--split", choices=("paper", "seeded"), default="paper",
                   help="paper: NeuroLM's evaluation protocol (default); seeded: stable subject-wise hash split")
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--workers", type=_positive_int, default=2, help="Dask worker processes (default 2)")
    p.add_argument("--batch-size", type=_positive_int, default=4, help="files per task (default 4)")
    p.add_argument("--tuev-mode", choices=("dedup", "reference"), default="dedup",
                   help="TUEV: one window per event (dedup, default) or per channel-event row (reference)")
    p.add_argument("--dask-address", default=None, help="use an existing Dask scheduler")
    p.add_argument("--moved", action="store_true",
                   help="the dataset's folder moved: accept ROOT as its new root (otherwise a root other than the "
                        "one this store ingested the dataset from is refused)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from neurolm.datasets.ingest import make_dataset_params
    from neurolm.datasets.report import render_text

    params = make_dataset_params(
        dataset=args.name, root=args.root, store=args.store, split=args.split, seed=args.seed,
        workers=args.workers, batch_size=args.batch_size, tuev_mode=args.tuev_mode, dask_address=args.dask_address,
        moved=args.moved,
    )  # fmt: skip
    from flows.ingest_dataset import run_ingest_dataset  # lazy: the library stays Prefect-free

    summary = run_ingest_dataset(params)
    print(json.dumps(summary, indent=2, default=str) if args.json else render_text(summary))
    return 0
