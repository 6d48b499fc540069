"""Shared helpers of the dataset-layout fixtures: class-dependent signals, EDF writing, bookkeeping.

Why class-dependent signals: the fixtures are also a small multi-task benchmark
(issue 13): every label must be *learnable* from the signal, so that the whole
chain (ingest → tokenizer → labeled corpus → instruction tuning) can show that
it learns. A recording is a 1/f ("pink") background plus, over each labelled
segment, the segment's :class:`Pattern`: a dominant rhythm (sine), a train of
spike-and-slow-wave complexes, a half-wave (eye movement) or band-limited noise
(muscle, spindles), at a class-specific frequency, amplitude and scalp region.
Frequency (±4 %), amplitude (±15 %) and phase vary per segment and channel, so
the classes are consistent across subjects but no two segments are identical;
the background (~10 µV RMS, stationary: without :mod:`neurolm.synth.states`' brain states, whose
20-75 µV rhythms, unrelated to the label, would drown the class patterns) keeps a single 1-s patch noisy. The patterns of
each task are in ``tuh.py`` / ``other.py`` next to their layouts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import signal as sps

from neurolm.synth.edf_writer import write_edf
from neurolm.synth.signal import synth_signal

BACKGROUND_UV = 10.0  # RMS of the pink background
_TAPER_S = 0.05  # raised-cosine edges of a segment (no step at its borders)
_LEFT = ("FP1", "F3", "C3", "P3", "O1", "F7", "T3", "T5", "T7", "P7", "A1", "T1", "FT7", "TP7", "CP3", "CP5",
         "FC3", "FC5", "F5", "C5", "P5", "PO3", "PO5", "PO7", "AF3", "F1", "FC1", "C1", "CP1", "P1", "CB1")
_REGIONS = {
    "frontal": ("FP", "AF", "F"),  # FP1, AF3, F3, FZ, FC1, FT7, ...
    "posterior": ("O", "P", "PO", "CB", "T5", "T6"),
}


@dataclass(frozen=True)
class Pattern:
    """What a class looks like: ``shape`` at ``freq`` Hz and ``amp`` µV over the channels of ``where``.

    shape: ``sine`` (a rhythm), ``spike`` (spike-and-slow-wave complexes at ``freq`` per second),
    ``halfwave`` (one slow deflection per ``1/freq`` s: eye movements), ``noise`` (band-limited
    noise ``freq`` ± ``width`` Hz: muscle, spindles, fast activity). where: ``all``, ``left``,
    ``frontal`` or ``posterior`` (other channels get ``off`` of the amplitude).
    """

    shape: str
    freq: float
    amp: float
    where: str = "all"
    width: float = 3.0
    off: float = 0.15


#: what a segment carries: nothing (background), one pattern, or several added together
Patterns = Pattern | tuple[Pattern, ...] | None


def site(label: str) -> str:
    """'EEG FP1-REF' / 'EEG F4-M1' / 'Fp1' -> 'FP1' / 'F4' / 'FP1'."""
    return label.upper().replace("EEG ", "").split("-")[0].strip()


def channel_weights(ch_names: Sequence[str], where: str, off: float) -> np.ndarray:
    """Per-channel gain of a pattern: 1 inside its region, ``off`` elsewhere."""
    sites = [site(c) for c in ch_names]
    if where == "all":
        return np.ones(len(sites))
    if where == "left":
        inside = [s in _LEFT for s in sites]
    elif where in _REGIONS:
        inside = [s.startswith(_REGIONS[where]) for s in sites]
    else:
        raise ValueError(f"unknown region {where!r}")
    return np.where(inside, 1.0, off)


def _bandnoise(rng: np.random.Generator, n: int, sfreq: float, lo: float, hi: float) -> np.ndarray:
    sos = sps.butter(4, [max(lo, 0.5), min(hi, 0.45 * sfreq)], btype="bandpass", fs=sfreq, output="sos")
    x = sps.sosfiltfilt(sos, rng.standard_normal(n + 400))[200:-200]
    return x / (x.std() or 1.0)  # unit RMS


def render(p: Pattern, n_ch: int, n: int, sfreq: float, rng: np.random.Generator) -> np.ndarray:
    """[n_ch, n] of pattern ``p`` (before channel weights), with per-segment/channel jitter."""
    t = np.arange(n) / sfreq
    f = p.freq * rng.uniform(0.96, 1.04)
    out = np.empty((n_ch, n))
    for c in range(n_ch):
        a = p.amp * rng.uniform(0.85, 1.15)
        if p.shape == "sine":
            out[c] = a * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        elif p.shape == "spike":  # sharp spike (~20 ms) then a slow wave (~120 ms) of opposite sign
            ph = np.mod(t * f + 0.1, 1.0) / f
            out[c] = a * (np.exp(-0.5 * ((ph - 0.02) / 0.012) ** 2)
                          - 0.5 * np.exp(-0.5 * ((ph - 0.16) / 0.06) ** 2))
        elif p.shape == "halfwave":
            out[c] = a * np.abs(np.sin(np.pi * f * t)) * (1 if c % 2 == 0 else -1)
        elif p.shape == "noise":
            out[c] = a * _bandnoise(rng, n, sfreq, f - p.width, f + p.width) / np.sqrt(2.0)
        else:
            raise ValueError(f"unknown pattern shape {p.shape!r}")
    return out


def class_signal(ch_names: Sequence[str], sfreq: float, seconds: float, seed: int,
                 segments: Sequence[tuple[float, float, Patterns]],
                 mains_hz: float | None = 60.0) -> np.ndarray:
    """float32 [n_ch, seconds·sfreq] µV: pink background + each segment's pattern(s) over [t0, t1) s.

    A ``None`` pattern leaves the segment as background; a tuple adds several. Segments may touch (a
    taper of 50 ms smooths each border); they should not overlap.
    """
    n = int(round(seconds * sfreq))
    rng = np.random.default_rng(seed)
    data = synth_signal(len(ch_names), sfreq, seconds, seed, ch_names=list(ch_names), mains_hz=mains_hz,
                        background_uv=BACKGROUND_UV, alpha_uv=0.0, line_uv=2.0, artefacts=False, states=False)
    data = data.astype(np.float64)
    taper = max(1, int(_TAPER_S * sfreq))
    for t0, t1, pats in segments:
        a, b = max(0, int(round(t0 * sfreq))), min(n, int(round(t1 * sfreq)))
        if b <= a:
            continue
        env = np.ones(b - a)
        k = min(taper, (b - a) // 2)
        if k:
            ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, k))
            env[:k], env[-k:] = ramp, ramp[::-1]
        for pat in (() if pats is None else pats if isinstance(pats, tuple) else (pats,)):
            w = channel_weights(ch_names, pat.where, pat.off)
            data[:, a:b] += w[:, None] * render(pat, len(ch_names), b - a, sfreq, rng) * env[None]
    return data.astype(np.float32)


def write_class_edf(path: str | os.PathLike, ch_names: list[str] | tuple[str, ...], sfreq: float,
                    seconds: float, seed: int, segments: Sequence[tuple[float, float, Patterns]],
                    mains_hz: float | None = 60.0) -> Path:
    """An EDF whose labelled segments carry their class patterns (see :func:`class_signal`)."""
    p = Path(os.fspath(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    data = class_signal(ch_names, sfreq, seconds, seed, segments, mains_hz=mains_hz)
    write_edf(p, data, sfreq, list(ch_names), unit="uV")
    return p


def write_edf_file(path: str | os.PathLike, ch_names: list[str] | tuple[str, ...], sfreq: float,
                   seconds: float, seed: int, mains_hz: float | None = 60.0) -> Path:
    """An EDF of synthetic EEG (µV) with the given raw labels and no class pattern; parent folders created."""
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
