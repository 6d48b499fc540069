"""NeuroLM pretraining windows: which slices of each stored recording form samples.

Rule (NeuroLM ``prepare_TUH_pretrain.py``, reference §1.3): a sample holds all
channels of one recording for ``floor(1024 / n_ch)`` seconds (so at most 1,024
patch tokens), windows are non-overlapping from the start, the last 10 s of
the recording are cropped first and the remainder is dropped.

One deviation, for safety: the window is capped at 64 s because the
tokenizer's temporal embedding has 64 rows (``time_embed = nn.Embedding(64,
...)``); NeuroLM would index past it for recordings with fewer than 16 channels.
For 16+ channels (every NeuroLM corpus) the rule is unchanged. The rule lives
in :mod:`neurolm.samples`; the signal store chunks by it too, so one window is
one chunk.

Windows are a table (recording_id, start, length, split), not copies of data:
the store reads one window in one slice. Held-out recordings (split
``heldout``) get no windows, so they can never reach pretraining.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurolm.samples import SFREQ, sample_seconds

WINDOW_COLUMNS = ["recording_id", "start", "length", "split"]


def window_seconds(n_channels: int) -> int:
    """Seconds per pretraining sample for a recording with ``n_channels`` channels."""
    if n_channels < 1:
        raise ValueError(f"n_channels must be >= 1, got {n_channels}")
    return sample_seconds(n_channels)


def window_samples(n_channels: int, sfreq: int = SFREQ) -> int:
    """Samples (at 200 Hz) per pretraining sample."""
    return window_seconds(n_channels) * sfreq


def recording_windows(n_channels: int, n_samples: int, crop_end_s: float = 10.0,
                      sfreq: int = SFREQ) -> list[tuple[int, int]]:
    """(start, length) of every full window of one recording after cropping ``crop_end_s`` from the end."""
    usable = int(n_samples) - int(round(crop_end_s * sfreq))
    length = window_samples(n_channels, sfreq)
    if usable < length:
        return []
    return [(i * length, length) for i in range(usable // length)]


def build_windows(recordings: pd.DataFrame, crop_end_s: float = 10.0, exclude_heldout: bool = True) -> pd.DataFrame:
    """WINDOWS rows for every recording of a RECORDINGS table, sorted by (recording_id, start).

    :func:`recording_windows` for every row, in array operations: the table is rebuilt at every
    flush of an ingest run, and an archive's runs out to millions of windows (20,000 1-h recordings:
    1.5 M rows, 1.5 s in a per-window Python loop, ~0.1 s here).
    """
    if recordings is None or recordings.empty:
        return pd.DataFrame({"recording_id": pd.Series([], dtype=object), "start": pd.Series([], dtype="int64"),
                             "length": pd.Series([], dtype="int64"), "split": pd.Series([], dtype=object)})
    rec = recordings[["recording_id", "n_channels", "n_samples", "split"]]
    if exclude_heldout:
        rec = rec[(rec["split"] != "heldout").to_numpy()]
    rec = rec.sort_values("recording_id", kind="stable")  # then each recording's windows, in order: sorted
    n_ch = rec["n_channels"].to_numpy(np.int64)
    length = np.array([window_samples(int(c)) for c in n_ch], np.int64)
    usable = rec["n_samples"].to_numpy(np.int64) - int(round(crop_end_s * SFREQ))
    count = np.where(usable >= length, usable // np.maximum(length, 1), 0)
    first = np.repeat(np.cumsum(count) - count, count)  # each window's recording's first row
    lengths = np.repeat(length, count)
    df = pd.DataFrame({
        "recording_id": rec["recording_id"].repeat(count).reset_index(drop=True),
        "start": (np.arange(len(lengths), dtype=np.int64) - first) * lengths,
        "length": lengths,
        "split": rec["split"].repeat(count).reset_index(drop=True),
    })
    if not rec["recording_id"].is_unique:  # not in a valid table; keep the (recording_id, start) order anyway
        df = df.sort_values(["recording_id", "start"], kind="stable")
    return df.reset_index(drop=True)
