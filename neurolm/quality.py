"""Per-channel and per-recording signal quality checks used during standardization.

Why here and not in QC later: the checks need the full-rate raw signal (clipping
is only visible before filtering smears the plateau) and the standardized one
(amplitude after DC removal), and both are in memory only while standardizing.
Flags ride along with the recording into the store; ingestion QC decides what to
quarantine. Only conditions that make a sample impossible raise here:

- ``BadInputError`` when no channel carries a usable signal (all flat, all
  non-finite) -- there is nothing to learn from such a recording.

Conventions (also documented in ``StandardizedRecording``):

- per-channel flags: ``flat`` (std below ``flat_uv``), ``clipped`` (at least
  ``clip_fraction`` of the samples, and ``clip_min_samples``, sit exactly on the
  channel's max or min), ``nan_repaired`` (some non-finite samples were
  linearly interpolated from their finite neighbours), ``dead`` (more than
  ``nan_max_fraction`` non-finite: the channel is zeroed, since interpolating
  over most of a channel invents a signal), ``extreme`` (robust amplitude -- the
  99th percentile of |x| after filtering, i.e. more than 1 % of the samples
  beyond ±``extreme_uv`` -- a few artefact spikes do not count).
- recording flags: every channel flag as ``"<flag>:<CH>"``, plus ``clipped``,
  ``nan_repaired``, ``extreme`` when any channel has them and ``mostly_flat``
  when at least ``mostly_flat_fraction`` of the channels are flat or dead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from neurolm.errors import BadInputError


class QualityThresholds(Protocol):
    """The fields of ``StandardizeConfig`` that quality checks read."""

    flat_uv: float
    clip_fraction: float
    clip_min_samples: int
    extreme_uv: float
    nan_max_fraction: float
    mostly_flat_fraction: float


def repair_nonfinite(row: np.ndarray, nan_max_fraction: float) -> str | None:
    """Repair NaN/inf in one channel in place; return the flag to record, if any.

    Short gaps (dropouts, a corrupt record) are bridged by linear interpolation
    so the FFT filter does not spread a NaN over the whole channel; a channel
    that is mostly non-finite is zeroed and called ``dead``.
    """
    bad = ~np.isfinite(row)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return None
    if n_bad > nan_max_fraction * row.size or n_bad == row.size:
        row[:] = 0.0
        return "dead"
    idx = np.flatnonzero(~bad)
    row[bad] = np.interp(np.flatnonzero(bad), idx, row[idx].astype(np.float64)).astype(row.dtype)
    return "nan_repaired"


def prepare_row(row: np.ndarray, th: QualityThresholds) -> tuple[list[str], float]:
    """Repair, check and centre one raw channel (float32 µV) in place; return (flags, mean).

    Fused so the signal is walked a handful of times: a float64 sum gives the
    finiteness test and the mean at once, the variance is one BLAS dot on the
    centred row. Centring keeps float32 FFTs precise under large electrode
    offsets; the caller adds ``mean x DC gain`` back (zero for any high-pass).
    """
    flags: list[str] = []
    total = float(row.sum(dtype=np.float64))
    if not np.isfinite(total):
        fix = repair_nonfinite(row, th.nan_max_fraction)
        if fix:
            flags.append(fix)
        if fix == "dead":
            return flags, 0.0
        total = float(row.sum(dtype=np.float64))
    mean = total / row.size
    row -= np.float32(mean)
    std = float(np.sqrt(max(float(np.dot(row, row)), 0.0) / row.size))
    if std < th.flat_uv:
        return flags + ["flat"], mean
    need = max(th.clip_min_samples, th.clip_fraction * row.size)
    if np.count_nonzero(row == row.max()) >= need or np.count_nonzero(row == row.min()) >= need:
        flags.append("clipped")
    return flags, mean


_CACHE_VALUES = 2**18  # float32 values per block of a column-blocked pass (1 MiB: stays in cache)


def extreme_channels(out_scaled: np.ndarray, unit_divisor: float, extreme_uv: float) -> np.ndarray:
    """Boolean per channel: robust amplitude (p99 of |x|, µV) above ``extreme_uv``.

    "p99 of |x| > t" is "more than 1 % of samples beyond ±t", so a count of
    threshold crossings replaces the percentile's partition (several times cheaper).
    """
    n = out_scaled.shape[1]
    if n == 0:
        return np.zeros(out_scaled.shape[0], bool)
    t = np.float32(extreme_uv / unit_divisor)
    over = np.zeros(out_scaled.shape[0], np.int64)
    step = max(1, _CACHE_VALUES // max(out_scaled.shape[0], 1))
    tmp = np.empty((out_scaled.shape[0], min(step, n)), np.float32)
    for s0 in range(0, n, step):  # |x| > t (x > t or x < -t; NaN neither) on cache-sized column blocks
        block = out_scaled[:, s0:s0 + step]
        a = np.abs(block, out=tmp[:, :block.shape[1]])
        over += np.count_nonzero(a > t, axis=1)
    return over > 0.01 * n


def recording_flags(names: Sequence[str], channel_flags: dict[str, tuple[str, ...]],
                    mostly_flat_fraction: float) -> tuple[str, ...]:
    """Summarize channel flags; raise when no channel is usable."""
    unusable = [n for n in names if {"flat", "dead"} & set(channel_flags.get(n, ()))]
    if names and len(unusable) == len(names):
        raise BadInputError(f"no valid EEG channels: all {len(names)} selected channels are flat or non-finite")
    out: set[str] = set()
    for name in names:
        for f in channel_flags.get(name, ()):
            out.add(f"{f}:{name}")
            if f in ("clipped", "nan_repaired", "extreme", "dead"):
                out.add(f)
    if names and len(unusable) >= mostly_flat_fraction * len(names):
        out.add("mostly_flat")
    return tuple(sorted(out))
