"""Deviation from NeuroLM's MNE chain versus recording length (issue 9 §3.4).

For each length and rate: the whole-recording max |ours - mne| / RMS(mne) with
``mne_reference_chain(exact_ratio=True)`` (no crop), the same over the part
more than 2 s from either end, and the RMS ratio dev_rms / rms.
Run: ``python bench/bench_short_edges.py`` (about a minute on one core).
"""

from __future__ import annotations

import numpy as np

from neurolm.readers.types import RawRecording
from neurolm.standardize import StandardizeConfig, mne_reference_chain, standardize
from neurolm.vocab import select_channels

NAMES = ("EEG FP1-REF", "EEG C3-REF", "EEG O2-REF")


def eeg(fs: float, seconds: float, seed: int) -> np.ndarray:
    """Brown noise + alpha + 60 Hz hum + offset, as tests/test_standardize.py."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fs))
    t = np.arange(n) / fs
    x = rng.standard_normal((3, n)).cumsum(axis=1) * 0.3 + 5 * rng.standard_normal((3, n))
    x += 30 * np.sin(2 * np.pi * 10 * t) + 15 * np.sin(2 * np.pi * 60 * t) + 800.0
    return x.astype(np.float32)


def measure(fs: float, seconds: float, seed: int = 0) -> tuple[float, float, float]:
    cfg = StandardizeConfig(crop_end_s=0.0)
    raw = RawRecording(data=eeg(fs, seconds, seed), sfreq=fs, ch_names=NAMES, format="edf")
    sel = select_channels(raw.ch_names)
    ours = standardize(raw, sel, cfg, crop_end_s=0.0).data.astype(np.float64)
    ref = mne_reference_chain(raw, sel, cfg, exact_ratio=True).astype(np.float64)
    rms = float(np.sqrt(np.mean(ref ** 2)))
    dev = np.abs(ours - ref)
    e = 400
    inner = dev[:, e:-e].max() / rms if dev.shape[1] > 2 * e else float("nan")
    return dev.max() / rms, inner, float(np.sqrt(np.mean(dev ** 2))) / rms


if __name__ == "__main__":
    print("| fs Hz | length s | max dev/rms | max dev/rms >2 s from ends | rms dev/rms |")
    print("|---|---|---|---|---|")
    for fs in (250.0, 256.0, 500.0, 1000.0):
        for sec in (10, 15, 20, 25, 33, 40, 60, 120):
            worst = [max(v) for v in zip(*(measure(fs, sec, s) for s in range(2)))]
            print(f"| {fs:g} | {sec} | {worst[0]:.2e} | {worst[1]:.2e} | {worst[2]:.2e} |", flush=True)
