"""A tiny synthetic corpus with distinct rhythms, for tests, demos and benchmarks.

Each window is dominated by one rhythm — slow waves (1-3 Hz), alpha (8-12 Hz) or
beta (18-25 Hz) — with random phase and amplitude per channel plus white noise.
A tokenizer that learns anything must reconstruct these spectra better over
training, and should spread them over different codes: a cheap, honest check.
"""

from __future__ import annotations

import numpy as np

from neurolm.tokenizer.data import ArraySampleDataset
from neurolm.vocab import index_of
from neurolm.samples import SFREQ, sample_seconds
from neurolm.standardize import StandardizedRecording
from neurolm.vocab import VOCAB
from storage.signal_store import SignalStore

RHYTHMS = {"slow": (1.0, 3.0), "alpha": (8.0, 12.0), "beta": (18.0, 25.0)}
# The 19 channels of the 10-20 system (vocabulary indices), frontal-central-parietal first.
DEFAULT_CHANNELS = tuple(index_of(n) for n in ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
                                                "F7", "F8", "T7", "T8", "P7", "P8", "FZ", "CZ", "PZ"))


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


def write_rhythm_store(url: str, n_recordings: int = 3, n_ch: int = 8, seconds: int = 130, seed: int = 0,
                       val_every: int = 3) -> list[str]:
    """A small signal store of rhythm recordings with a WINDOWS table (NeuroLM sample windows).

    Every ``val_every``-th recording is a validation recording. Returns the recording ids.
    Uses the store's own API, so it exercises the real contract the tokenizer reads.
    """
    import pandas as pd


    store = SignalStore.open(url, create=True)
    rng = np.random.default_rng(seed)
    ch_idx = tuple(DEFAULT_CHANNELS[:n_ch])
    ids, rows = [], []
    names = list(RHYTHMS)
    for i in range(n_recordings):
        rid = f"synth-rhythm-{i:03d}"
        data = np.concatenate([rhythm_window(names[(i + k) % 3], n_ch, 10, rng) for k in range(-(-seconds // 10))],
                              axis=1)[:, : seconds * 200]
        rec = StandardizedRecording(data=data, ch_names=tuple(VOCAB[c] for c in ch_idx), ch_indices=ch_idx,
                                    orig_sfreq=200.0, duration_s=float(seconds), channel_flags={}, flags=())
        store.write_recording(rid, rec, {"dataset": "synth-rhythm"})
        win = sample_seconds(n_ch) * SFREQ
        split = "val" if (i + 1) % val_every == 0 else "train"
        rows += [(rid, k * win, win, split) for k in range(data.shape[1] // win)]
        ids.append(rid)
    store.write_table("windows", pd.DataFrame(rows, columns=["recording_id", "start", "length", "split"]))
    return ids
