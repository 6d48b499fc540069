"""Turning stored EEG windows into tokenizer samples and targets (reference §1.3, §2.3).

A *sample* is one window of a recording, ``n_sec`` seconds × ``n_ch`` channels,
cut into 1-s patches of 200 samples and laid out **time-major**: token
``k = t·n_ch + c`` is channel c at second t. It is padded to ``max_tokens``
(1024) with zero patches, channel index 136 (``pad``) and time index 0.

Targets are computed on the **unpadded** sample, as in the original, then
padded with zeros: padding must not shift the per-sample mean/std (a 19-channel
sample is 2 % padding, an 8-channel one would be far more):

- ``y_freq``: |FFT| of each patch (all 200 bins), z-scored with one mean/std
  over every valid patch and bin, then bins 0..freq_bins-1 kept;
- ``y_raw``: the patch itself z-scored with one mean/std over the valid sample.

std is the population std, floored at 1e-6 so an all-flat sample gives zeros, not NaNs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from neurolm.errors import ConfigError, StoreError
from neurolm.samples import MAX_TOKENS, PATCH, TIME_ROWS, sample_seconds
from neurolm.vocab import PAD_INDEX
from storage.signal_store import SignalStore

_EPS = 1e-6


def build_sample(signal: np.ndarray, ch_indices: Sequence[int], max_tokens: int = MAX_TOKENS,
                 patch_size: int = PATCH) -> dict[str, torch.Tensor]:
    """[n_ch, n_sec·200] model-unit signal → dict(x [T,200] f32, ch [T] long, time [T] long, mask [T] bool).

    T = max_tokens. Trailing samples that do not fill a whole patch are dropped.
    """
    sig = np.asarray(signal, dtype=np.float32)
    if sig.ndim != 2:
        raise ConfigError(f"signal must be [n_ch, n_samples], got shape {sig.shape}")
    n_ch = sig.shape[0]
    if len(ch_indices) != n_ch:
        raise ConfigError(f"{len(ch_indices)} channel indices for {n_ch} channels")
    n_sec = sig.shape[1] // patch_size
    n_tok = n_ch * n_sec
    if n_tok > max_tokens:
        raise ConfigError(f"{n_ch} ch × {n_sec} s = {n_tok} tokens > max_tokens={max_tokens}")
    if n_tok == 0:
        raise ConfigError(f"signal of {sig.shape[1]} samples holds no whole {patch_size}-sample patch")
    # [n_ch, n_sec, P] → [n_sec, n_ch, P] → [n_tok, P]: time-major order
    patches = sig[:, : n_sec * patch_size].reshape(n_ch, n_sec, patch_size).transpose(1, 0, 2).reshape(n_tok, patch_size)
    x = torch.zeros(max_tokens, patch_size, dtype=torch.float32)
    x[:n_tok] = torch.from_numpy(np.ascontiguousarray(patches))
    ch = torch.full((max_tokens,), PAD_INDEX, dtype=torch.long)
    ch[:n_tok] = torch.as_tensor(list(ch_indices), dtype=torch.long).repeat(n_sec)
    time = torch.zeros(max_tokens, dtype=torch.long)
    time[:n_tok] = torch.arange(n_sec, dtype=torch.long).repeat_interleave(n_ch)
    mask = torch.zeros(max_tokens, dtype=torch.bool)
    mask[:n_tok] = True
    return {"x": x, "ch": ch, "time": time, "mask": mask}


def _zscore(a: torch.Tensor) -> torch.Tensor:
    return (a - a.mean()) / a.std(unbiased=False).clamp_min(_EPS)


def make_targets(x: torch.Tensor, mask: torch.Tensor, freq_bins: int = 100) -> dict[str, torch.Tensor]:
    """Per-sample targets for one sample x [T, P] with mask [T] → y_freq [T, freq_bins], y_raw [T, P]."""
    valid = x[mask].double()
    y_freq = torch.zeros(x.shape[0], freq_bins, dtype=torch.float32)
    y_raw = torch.zeros_like(x)
    if valid.shape[0]:
        amp = torch.fft.fft(valid, dim=-1).abs()
        y_freq[mask] = _zscore(amp)[:, :freq_bins].float()
        y_raw[mask] = _zscore(valid).float()
    return {"y_freq": y_freq, "y_raw": y_raw}


def training_sample(signal: np.ndarray, ch_indices: Sequence[int], max_tokens: int = MAX_TOKENS,
                    freq_bins: int = 100) -> dict[str, torch.Tensor]:
    """:func:`build_sample` plus its targets: everything one training step needs from a window."""
    s = build_sample(signal, ch_indices, max_tokens)
    s.update(make_targets(s["x"], s["mask"], freq_bins))
    return s


class ArraySampleDataset(Dataset):
    """In-memory windows [(signal [n_ch, n], ch_indices), ...]: tests, demos and benchmarks."""

    def __init__(self, windows: Sequence[tuple[np.ndarray, Sequence[int]]], max_tokens: int = MAX_TOKENS,
                 freq_bins: int = 100):
        self.windows, self.max_tokens, self.freq_bins = list(windows), max_tokens, freq_bins

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        sig, ch = self.windows[i]
        return training_sample(sig, ch, self.max_tokens, self.freq_bins)


class StoreSampleDataset(Dataset):
    """Training samples from a signal store's WINDOWS table, one per row of the chosen split.

    Rows are sorted by (recording_id, start) so index i means the same window on
    every machine; shuffling is the sampler's job (deterministic by seed and step,
    see :mod:`.train`). The store is opened lazily in each DataLoader worker:
    handles to fsspec/zarr objects must not cross a fork or a pickle.
    """

    def __init__(self, store_url: str, split: str = "train", seed: int = 0, version: str | None = None,
                 max_tokens: int = MAX_TOKENS, freq_bins: int = 100, time_rows: int = TIME_ROWS):
        self.store_url, self.split, self.seed, self.version = store_url, split, seed, version
        self.max_tokens, self.freq_bins, self.time_rows = max_tokens, freq_bins, time_rows
        store = self._open()
        self.version_id = store.version_id
        self.vocab_version = store.vocab_version
        windows = store.read_table("windows")  # an unwritten table reads as empty
        windows = windows[(windows["split"] == split) & (windows["length"] >= PATCH)  # < 1 patch: nothing to learn
                          & windows["recording_id"].isin(set(store.committed_ids()))]
        windows = windows.sort_values(["recording_id", "start"], kind="stable")
        if windows.empty:
            raise StoreError(f"store {store_url} (version {store.version_id}) has no {split!r} windows")
        self.rows = [(str(r), int(s), int(n)) for r, s, n in
                     zip(windows["recording_id"], windows["start"], windows["length"])]
        self._meta: dict[str, tuple[int, ...]] = {}
        self._store = None

    def _open(self):
        return SignalStore.open(self.store_url, version=self.version)  # StoreError when absent

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_store"] = None
        return state

    def __len__(self) -> int:
        return len(self.rows)

    def channels(self, recording_id: str) -> tuple[int, ...]:
        if recording_id not in self._meta:
            if self._store is None:
                self._store = self._open()
            self._meta[recording_id] = tuple(int(c) for c in self._store.recording_meta(recording_id)["ch_indices"])
        return self._meta[recording_id]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._store is None:
            self._store = self._open()
        rec, start, length = self.rows[i]
        ch = self.channels(rec)
        n_sec = min(length // PATCH, sample_seconds(len(ch), self.max_tokens, self.time_rows))
        sig = self._store.read_signal(rec, start, start + n_sec * PATCH)  # only what the model can take
        return training_sample(sig, ch, self.max_tokens, self.freq_bins)
