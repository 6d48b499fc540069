"""A tiny synthetic corpus with distinct rhythms, for tests, demos and benchmarks.

Each window is dominated by one rhythm — slow waves (1-3 Hz), alpha (8-12 Hz) or
beta (18-25 Hz) — with random phase and amplitude per channel plus white noise.
A tokenizer that learns anything must reconstruct these spectra better over
training, and should spread them over different codes: a cheap, honest check.
"""

from __future__ import annotations

import numpy as np

from neurolm.tokenizer.data import ArraySampleDataset

RHYTHMS = {"slow": (1.0, 3.0), "alpha": (8.0, 12.0), "beta": (18.0, 25.0)}
DEFAULT_CHANNELS = (0, 2, 17, 21, 39, 43, 61, 65)  # FP1 FP2 F3 F4 C3 C4 P3 P4


def rhythm_window(rhythm: str, n_ch: int, seconds: int, rng: np.random.Generator, sfreq: float = 200.0) -> np.ndarray:
    """[n_ch, seconds·sfreq] float32 in model units (µV/100, so amplitudes ~0.1-1)."""
    lo, hi = RHYTHMS[rhythm]
    t = np.arange(int(seconds * sfreq)) / sfreq
    f = rng.uniform(lo, hi)
    amp = rng.uniform(0.4, 1.0, size=(n_ch, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_ch, 1))
    sig = amp * np.sin(2 * np.pi * f * t[None, :] + phase) + 0.1 * rng.standard_normal((n_ch, t.size))
    return sig.astype(np.float32)


def rhythm_windows(n: int, n_ch: int = 4, seconds: int = 8, seed: int = 0,
                   channels: tuple[int, ...] = DEFAULT_CHANNELS) -> tuple[list[tuple[np.ndarray, tuple[int, ...]]], list[str]]:
    """n windows cycling through the rhythms; returns (windows, rhythm label of each)."""
    rng = np.random.default_rng(seed)
    names = list(RHYTHMS)
    labels = [names[i % len(names)] for i in range(n)]
    ch = tuple(channels[:n_ch])
    return [(rhythm_window(lab, n_ch, seconds, rng), ch) for lab in labels], labels


def rhythm_dataset(n: int = 48, n_ch: int = 4, seconds: int = 8, seed: int = 0, max_tokens: int = 256,
                   freq_bins: int = 100) -> ArraySampleDataset:
    windows, _ = rhythm_windows(n, n_ch, seconds, seed)
    return ArraySampleDataset(windows, max_tokens=max_tokens, freq_bins=freq_bins)
