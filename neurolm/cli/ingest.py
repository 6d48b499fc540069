"""``neurolm ingest`` and ``neurolm inspect``.

``ingest`` validates every argument before any work (bad paths, workers < 1,
split fractions are reported as one clear error line), then runs the Prefect
flow ``flows.ingest`` (imported lazily: the library stays Prefect-free) and
shows a progress bar fed by the flow's batch events. ``inspect`` reads a store
and needs neither Prefect nor Dask.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three comma-separated numbers, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected train,val,test fractions, got {text!r}")
    return parts  # type: ignore[return-value]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest", help="ingest an EEG archive into a signal store (incremental, resumable)",
        description="Discover EEG files under SOURCE, standardize new/changed ones into STORE, quarantine "
                    "broken files with a reason. Rerunning does only what changed; an interrupted run resumes.")
    p.add_argument("source", help="archive root (directory or fsspec URL)")
    p.add_argument("--store", required=True, help="signal store path/URL (created if absent)")
    p.add_argument("--dataset", default=None,
                   help="dataset name, one per archive (default: slug of the source folder name); the store remembers "
                        "each dataset's root and refuses another root under the same name (see --moved); files of "
                        "this dataset that are no longer under SOURCE are marked 'removed' (their signals are kept)")
    p.add_argument("--moved", action="store_true",
                   help="the archive moved: accept SOURCE as the new root of a dataset first ingested from another "
                        "folder (otherwise another root under the same dataset name is refused)")
    p.add_argument("--mains", type=float, default=None, metavar="HZ",
                   help="mains frequency to notch, 50 or 60 (default: the store's, 60 Hz)")
    p.add_argument("--layout", choices=("auto", "bids", "tuh", "generic"), default="auto")
    p.add_argument("--family", default=None, help="subject-key family for the held-out registry (e.g. tuh)")
    p.add_argument("--tuh-le", choices=("skip", "keep"), default="skip",
                   help="TUH -LE (linked-ears) montage files: skip, as NeuroLM's pretraining script does "
                        "(default; catalogued with the reason), or keep")
    p.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
    p.add_argument("--batch-size", type=int, default=8, help="files per Prefect task (default 8)")
    p.add_argument("--dask-address", default=None, help="use an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--seed", type=int, default=0, help="subject split seed (default 0)")
    p.add_argument("--splits", type=_fractions, default=(0.8, 0.1, 0.1), metavar="TRAIN,VAL,TEST",
                   help="subject split fractions (default 0.8,0.1,0.1)")
    p.add_argument("--heldout", action="append", default=[], metavar="FAMILY:ID",
                   help="register a held-out subject key before splitting (repeatable)")
    p.add_argument("--lock-timeout", type=float, default=30.0, help="seconds to wait for another run's lock")
    p.add_argument("--file-timeout", type=float, default=600.0,
                   help="per-file time limit in seconds; a file taking longer is quarantined (default 600)")
    p.add_argument("--file-memory-gb", type=float, default=None,
                   help="per-file memory budget in GiB (default min(8, 60%% of RAM / workers))")
    p.add_argument("--overlap", choices=("auto", "on", "off"), default="auto",
                   help="write each file while the next is read and filtered, on a second thread per worker "
                        "(default auto: on when there are two cores per local worker)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    q = subparsers.add_parser("inspect", help="summarize a signal store: recordings, hours, channels, splits, "
                                              "quarantined files")
    q.add_argument("store", help="signal store path/URL")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--recordings", action="store_true",
                   help="audit: every recording (source, kept channels, dropped channels and why, flags, duration, "
                        "split) and every quarantined, skipped or removed file with its reason")
    q.set_defaults(func=cmd_inspect)


class _Progress:
    """Batch progress bar (tqdm) driven by the flow's events."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None

    def __call__(self, ev: dict) -> None:
        if not self.enabled:
            return
        if ev["event"] == "plan":
            print(f"{ev['files']} files found, {ev['to_ingest']} to ingest in {ev['batches']} batches"
                  + (f", {ev['removed']} removed from the source" if ev["removed"] else "")
                  + (f", {ev['recovered']} recovered from an interrupted run" if ev["recovered"] else ""),
                  file=sys.stderr, flush=True)
            if ev["batches"]:
                from tqdm import tqdm

                self.bar = tqdm(total=ev["to_ingest"], unit="file", desc="ingest", file=sys.stderr)
        elif ev["event"] == "batch" and self.bar is not None:
            self.bar.update(ev["files"])
            self.bar.set_postfix(batches=f"{ev['done']}/{ev['total']}", quarantined=ev["quarantined"])
        elif ev["event"] == "done" and self.bar is not None:
            self.bar.close()


def cmd_ingest(args) -> int:
    from neurolm.ingest.config import make_params
    from neurolm.ingest.report import render_run_text

    params = make_params(
        source=args.source, store=args.store, dataset=args.dataset, moved=args.moved, mains_hz=args.mains,
        layout=args.layout, family=args.family, tuh_le=args.tuh_le, workers=args.workers, batch_size=args.batch_size,
        dask_address=args.dask_address, seed=args.seed, split_fractions=args.splits, heldout_subjects=tuple(args.heldout),
        lock_timeout_s=args.lock_timeout, file_timeout_s=args.file_timeout, file_memory_gb=args.file_memory_gb,
        overlap=args.overlap,
    )
    from flows.ingest import run_ingest  # Prefect only for this command

    # SIGTERM (a scheduler's kill, `timeout`) unwinds like Ctrl-C, so the local Prefect server and the
    # Dask cluster this command started are stopped and the store lock is released. Committed
    # recordings are safe either way (a rerun resumes from the commit markers).
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    except ValueError:  # not the main thread (embedded use): leave signal handling to the caller
        pass

    summary = run_ingest(params, on_event=_Progress(not args.no_progress and not args.json))
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        print(render_run_text(summary))
        print("see the run: `prefect flow-run ls` (flow neurolm-ingest), or `make ui` for the Prefect UI; "
              f"store contents: `neurolm inspect {args.store}`")
    return 0


def cmd_inspect(args) -> int:
    from neurolm.ingest.audit import recording_audit, render_audit_text
    from neurolm.ingest.report import inspect_store, render_inspect_text

    if args.recordings:
        audit = recording_audit(args.store)
        print(json.dumps(audit, indent=1, default=str) if args.json else render_audit_text(audit))
        return 0
    info = inspect_store(args.store)
    print(json.dumps(info, indent=1, default=str) if args.json else render_inspect_text(info))
    return 0
