"""Name numbered EEG channels (``EEG 001``) by their digitized positions.

Neuromag/MNE FIF files often label EEG electrodes only by number but carry each
electrode's digitized position (MNE head coordinates). Each such channel is
mapped to the nearest site of the vocabulary, using MNE's ``standard_1005``
template (named ``colin27_1005`` since MNE 1.13, same positions) transformed
to head coordinates (MNE's own ``set_montage``, which aligns the template's
fiducials with the head frame), when that site is within ``MAX_DISTANCE_M``:

- Threshold 15 mm: the vocabulary sites of the template are 16.5-38 mm from
  their nearest neighbour (median 24 mm; the C/CCP/CP rows are the closest).
  15 mm covers digitization error (a few mm) and the difference between a
  real head and the template (up to ~10 mm away from the vertex), while an
  electrode farther from every site (cheek, neck, a cap on another grid) is
  not named: it is dropped with its distance in the reason.
- Ambiguity: as neighbours can be 16.5 mm apart, an electrode can be within
  15 mm of two sites. It is named only when its nearest site is at least
  ``MIN_MARGIN_M`` (4 mm) closer than the second nearest; otherwise it is
  dropped as ambiguous rather than given a guessed name.
- Old 10-20 names (T3/T4/T5/T6) share T7/T8/P7/P8's positions and are never
  the target; reference sites (A1/A2/M1/M2) are not targets either: a signal
  recorded there is a reference, and a position does not make it a brain channel.
- Two channels nearest the same site: the closer one gets the name, the other
  is dropped as a duplicate of it.

Only EEG channels whose label names no site are mapped; a label that is
already a vocabulary name keeps it. The mapping is recorded in the recording's
metadata (``position_mapping``: raw label, site, distance in mm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from neurolm.vocab import VOCAB, normalize_channel_name

MAX_DISTANCE_M = 0.015
MIN_MARGIN_M = 0.004
_NOT_TARGETS = frozenset({"T3", "T4", "T5", "T6", "A1", "A2", "M1", "M2"})


@dataclass(frozen=True)
class PositionMapping:
    """Outcome of mapping positions: the names given and the channels left unnamed (with why)."""

    names: dict[str, str]  # raw label -> vocabulary site
    distances_mm: dict[str, float]  # raw label -> distance to that site
    unmapped: dict[str, str]  # raw label -> reason it got no site

    def report(self) -> list[list]:
        """``[[raw, site, distance_mm], ...]`` for the recording metadata."""
        return [[raw, site, round(self.distances_mm[raw], 1)] for raw, site in self.names.items()]


@lru_cache(maxsize=1)
def site_positions() -> tuple[tuple[str, ...], np.ndarray]:
    """Vocabulary sites present in ``standard_1005`` and their head-frame positions (m)."""
    import mne

    try:  # MNE >= 1.13 renamed standard_1005 (same positions) and deprecated the old name
        montage = mne.channels.make_standard_montage("colin27_1005")
    except ValueError:
        montage = mne.channels.make_standard_montage("standard_1005")
    info = mne.create_info(montage.ch_names, 1000.0, "eeg")
    info.set_montage(montage, verbose="error")
    by_upper = {ch["ch_name"].upper(): np.asarray(ch["loc"][:3], float) for ch in info["chs"]}
    names, pos = [], []
    for name in VOCAB:
        if name.upper() in by_upper and name not in _NOT_TARGETS and "-" not in name:
            names.append(name)
            pos.append(by_upper[name.upper()])
    return tuple(names), np.asarray(pos)


def map_positions(ch_names: Sequence[str], locs: Sequence[tuple[float, float, float] | None],
                  max_distance_m: float = MAX_DISTANCE_M) -> PositionMapping:
    """Name each channel that has a position but no site name after its nearest vocabulary site."""
    cands = [(raw, np.asarray(loc, float)) for raw, loc in zip(ch_names, locs)
             if loc is not None and normalize_channel_name(raw).kind == "unknown"]
    if not cands:
        return PositionMapping({}, {}, {})
    names, pos = site_positions()
    best: dict[str, tuple[str, float]] = {}  # site -> (raw, distance)
    unmapped: dict[str, str] = {}
    nearest: dict[str, tuple[str, float]] = {}
    for raw, loc in cands:
        d = np.linalg.norm(pos - loc[None, :], axis=1)
        i, j = (int(k) for k in np.argsort(d)[:2])
        site, dist = names[i], float(d[i])
        if dist > max_distance_m:
            unmapped[raw] = (f"electrode position {dist * 1e3:.0f} mm from the nearest site {site} "
                             f"(> {max_distance_m * 1e3:.0f} mm)")
            continue
        if d[j] - dist < MIN_MARGIN_M:
            unmapped[raw] = (f"electrode position ambiguous: {dist * 1e3:.0f} mm from {site}, "
                             f"{d[j] * 1e3:.0f} mm from {names[j]}")
            continue
        nearest[raw] = (site, dist)
        if site not in best or dist < best[site][1]:
            best[site] = (raw, dist)
    out, dists = {}, {}
    for raw, (site, dist) in nearest.items():
        if best[site][0] == raw:
            out[raw], dists[raw] = site, dist * 1e3
        else:
            unmapped[raw] = f"position nearest {site}, which {best[site][0]!r} is closer to"
    return PositionMapping(out, dists, unmapped)
