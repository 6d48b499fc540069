"""Reading labelled windows back from a signal store (what the instruction-tuning stage consumes).

Why a helper: a TUEV row with ``wrap = True`` continues past the recording's
last sample at its first one (NeuroLM's 3x tiling, see `neurolm.datasets.tuev`);
reading ``[start, start + length)`` naively would return a short window. Every
consumer of the LABELS table should read through `read_label_window`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from storage.signal_store import SignalStore


def read_label_window(store: SignalStore, row: Mapping[str, Any]) -> np.ndarray:
    """float32 [n_ch, length] (model units) of one LABELS row, wrapping circularly when needed."""
    rid, start, length = row["recording_id"], int(row["start"]), int(row["length"])
    n = int(store.recording_meta(rid)["n_samples"])
    if start + length <= n:
        return store.read_signal(rid, start, start + length)
    if length > n:
        raise ValueError(f"window of {length} samples is longer than recording {rid} ({n} samples)")
    head = store.read_signal(rid, start, n)
    tail = store.read_signal(rid, 0, start + length - n)
    return np.concatenate([head, tail], axis=1)


def iter_label_windows(store: SignalStore, task: str, split: str | None = None) -> Iterator[tuple[dict, np.ndarray]]:
    """(row, window) for every LABELS row of `task` (and `split`), in table order."""
    labels = store.read_table("labels")
    sel = labels[labels["task"] == task]
    if split is not None:
        sel = sel[sel["split"] == split]
    for row in sel.to_dict("records"):
        yield row, read_label_window(store, row)
