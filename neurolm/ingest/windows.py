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
    """WINDOWS rows for every recording of a RECORDINGS table, sorted by (recording_id, start)."""
    rows: list[tuple[str, int, int, str]] = []
    if recordings is not None and not recordings.empty:
        for rid, n_ch, n, split in recordings[["recording_id", "n_channels", "n_samples", "split"]].itertuples(
                index=False, name=None):
            if exclude_heldout and split == "heldout":
                continue
            rows.extend((rid, s, ln, split) for s, ln in recording_windows(int(n_ch), int(n), crop_end_s))
    df = pd.DataFrame(rows, columns=WINDOW_COLUMNS)
    df = df.astype({"start": "int64", "length": "int64"})
    return df.sort_values(["recording_id", "start"], kind="stable").reset_index(drop=True)
