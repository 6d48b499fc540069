"""`neurolm synth OUT_DIR`: write a synthetic EEG archive (or a dataset fixture).

Why a CLI: users try the pipeline end to end (ingest → tokenizer → tokens)
without patient data, and CI builds its fixtures the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from neurolm.errors import ConfigError


def _formats(text: str) -> tuple[str, ...]:
    from neurolm.synth.writers import WRITABLE_FORMATS

    fmts = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in WRITABLE_FORMATS]
    if not fmts or bad:
        raise argparse.ArgumentTypeError(
            f"unknown format(s) {', '.join(bad) or '(none)'}; choose from {','.join(WRITABLE_FORMATS)}"
        )
    return fmts


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth", help="write a synthetic EEG archive (all formats, malformed files, layouts)",
        description=__doc__.splitlines()[0],
    )  # fmt: skip
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path)
    p.add_argument("--recordings", type=_positive_int, default=24, help="good recordings (default 24)")
    p.add_argument("--formats", type=_formats, default=None, help="comma list (edf,bdf,gdf,fif,brainvision,eeglab,cnt); default all but cnt")
    p.add_argument("--minutes", type=_positive_float, default=1.0, help="mean recording length (default 1)")
    p.add_argument("--malformed", type=_non_negative_int, default=5, help="malformed files (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=("flat", "tuh", "bids"), default="flat")
    p.add_argument("--mains", type=float, choices=(50.0, 60.0), default=60.0, help="line-noise frequency")
    p.add_argument("--dataset", default=None, help="write a downstream-dataset fixture instead (e.g. tuab)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty OUT_DIR")
    p.set_defaults(func=run)


def _summary(manifest) -> None:
    from collections import Counter

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"synthetic corpus in {manifest.root} ({manifest.layout})")
    for col in ("format", "files", "minutes", "rates (Hz)", "channels"):
        table.add_column(col)
    by_fmt: dict[str, list] = {}
    for f in manifest.good:
        by_fmt.setdefault(f.format, []).append(f)
    for fmt, fs in sorted(by_fmt.items()):
        rates = ",".join(f"{r:g}" for r in sorted({f.sfreq for f in fs}))
        chans = f"{min(len(f.ch_names) for f in fs)}-{max(len(f.ch_names) for f in fs)}"
        table.add_row(fmt, str(len(fs)), f"{sum(f.duration_s for f in fs) / 60:.1f}", rates, chans)
    kinds = Counter(f.malformed for f in manifest.malformed)
    if kinds:
        table.add_row("malformed", str(sum(kinds.values())), "", "", ", ".join(f"{k}×{v}" for k, v in sorted(kinds.items())))
    Console().print(table)


def run(args: argparse.Namespace) -> int:
    out: Path = args.out_dir
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise ConfigError(f"{out} is not empty; pass --overwrite to write into it")
    if args.dataset:
        from neurolm.datasets.synth import synth_dataset  # the command's own stage, loaded when it runs

        result = synth_dataset(args.dataset, out, seed=args.seed)
        print(_dataset_summary(args.dataset, out, result))
        return 0
    from neurolm.synth.corpus import DEFAULT_FORMATS, synth_corpus

    manifest = synth_corpus(
        out, n_recordings=args.recordings, formats=args.formats or DEFAULT_FORMATS, minutes=args.minutes,
        n_malformed=args.malformed, seed=args.seed, mains_hz=args.mains, layout=args.layout,
    )  # fmt: skip
    _summary(manifest)
    return 0


def _dataset_summary(name: str, out, manifest) -> str:
    """One line per fixture: file count, subjects, seconds and the bad cases (the manifest is in OUT_DIR)."""
    if not isinstance(manifest, dict):
        return f"wrote synthetic {name} fixture to {out}"
    files = manifest.get("files") or []
    subjects = {f.get("subject_key") for f in files if isinstance(f, dict)}
    seconds = sum(float(f.get("seconds") or 0) for f in files if isinstance(f, dict))
    bad = manifest.get("bad") or []
    line = (f"wrote synthetic {name} fixture to {out}: {len(files)} recordings, {len(subjects)} subjects, "
            f"{seconds / 60:.1f} min")
    return line + (f", {len(bad)} bad-input cases" if bad else "")
