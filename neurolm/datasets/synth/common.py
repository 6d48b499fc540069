"""Shared helpers of the dataset-layout fixtures: EDF writing and bookkeeping.

Signals come from `neurolm.synth.signal.synth_signal` (EEG-like spectra, so the
real standardize chain has something realistic to filter) and are written with
the project's EDF writer (pyedflib).
"""

from __future__ import annotations

import os
from pathlib import Path

from neurolm.synth.edf_writer import write_edf
from neurolm.synth.signal import synth_signal


def write_edf_file(path: str | os.PathLike, ch_names: list[str] | tuple[str, ...], sfreq: float,
                   seconds: float, seed: int, mains_hz: float | None = 60.0) -> Path:
    """An EDF of synthetic EEG (µV) with the given raw labels; parent folders created."""
    p = Path(os.fspath(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    data = synth_signal(len(ch_names), sfreq, seconds, seed, ch_names=list(ch_names), mains_hz=mains_hz)
    write_edf(p, data, sfreq, list(ch_names), unit="uV")
    return p


def write_text(path: str | os.PathLike, text: str) -> Path:
    p = Path(os.fspath(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def rel(root: Path, p: Path) -> str:
    return p.relative_to(root).as_posix()
