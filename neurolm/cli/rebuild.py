"""`neurolm rebuild --store STORE`: a new store version for a changed standardization config.

Why a separate command: ingestion adds *files* to the current version; a
rebuild re-derives *every* recording under new settings into a new version
beside the current one and switches only when complete. ``--list`` and
``--remove`` manage the versions a store accumulates.
"""

from __future__ import annotations

import argparse
import json



def _notch(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", "0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"notch must be a frequency in Hz or 'none', got {text!r}") from None
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rebuild", help="rebuild the store under a new standardization config; list/remove versions",
        description=__doc__.splitlines()[0],
    )  # fmt: skip
    p.add_argument("--store", required=True, help="signal store path or fsspec URL")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list versions (status, created, recordings, current)")
    what.add_argument("--remove", metavar="VERSION", help="delete a non-current version")
    p.add_argument("--config", dest="config_file", metavar="FILE",
                   help="YAML/JSON with StandardizeConfig fields, merged over the current config")
    p.add_argument("--notch", type=_notch, default=argparse.SUPPRESS, metavar="HZ|none",
                   help="default mains notch (Hz), or 'none' to disable")
    p.add_argument("--l-freq", type=float, help="high-pass edge (Hz)")
    p.add_argument("--h-freq", type=float, help="low-pass edge (Hz)")
    p.add_argument("--source-notch", choices=("keep", "store"), default="keep",
                   help="keep per-source mains frequencies (default) or apply the store notch to every file")
    p.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
    p.add_argument("--batch-size", type=int, default=8, help="files per Prefect task (default 8)")
    p.add_argument("--dask-address", help="existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--crop-end", dest="crop_end_s", type=float, default=10.0,
                   help="seconds cropped from each recording's end for windows (default 10)")
    p.add_argument("--no-switch", action="store_true", help="build the version but keep the current one")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _print_versions(rows: list[dict], as_json: bool) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'':2}{'version':16}{'status':11}{'created':22}{'recordings':>11}  notch  band")
    for v in rows:
        band = f"{v.get('l_freq')}-{v.get('h_freq')} Hz"
        print(f"{'*' if v['current'] else ' ':2}{v['version_id']:16}{str(v['status']):11}"
              f"{str(v['created']):22}{v['recordings']:>11}  {str(v.get('notch_hz')):5}  {band}")


def run(args: argparse.Namespace) -> int:
    from neurolm.ingest.rebuild import (make_rebuild_params, remove_store_version, target_versions,
                                        version_summaries)

    if args.list:
        _print_versions(version_summaries(args.store), args.json)
        return 0
    if args.remove:
        remove_store_version(args.store, args.remove)
        print(f"removed version {args.remove} from {args.store}")
        return 0
    notch = getattr(args, "notch", "unset")
    params = make_rebuild_params(
        store=args.store, config_file=args.config_file, l_freq=args.l_freq, h_freq=args.h_freq,
        notch_hz=None if notch in ("unset", None) else notch, no_notch=notch is None,
        source_notch=args.source_notch, workers=args.workers, batch_size=args.batch_size,
        dask_address=args.dask_address, crop_end_s=args.crop_end_s, switch=not args.no_switch)
    # No option at all is valid: after a vocabulary upgrade the same config maps to a new version.
    old, new = target_versions(params)
    if old == new:  # answered without starting Prefect or Dask
        print(f"store already at this config ({old}); nothing to do")
        return 0
    from flows.rebuild import run_rebuild

    result = run_rebuild(params)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(result["message"])
    return 0
