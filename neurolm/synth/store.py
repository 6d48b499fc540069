"""A signal store of synthetic EEG written straight through the store API (no files, no ingestion).

Why: stage-2 tests and benchmarks need a token corpus whose codes carry sequential structure
(brain states lasting seconds to tens of seconds, :mod:`neurolm.synth.states`), built in
seconds. ``neurolm synth`` + ``neurolm ingest`` make the same kind of signal through every
file format and the real standardization chain, at the cost of a Prefect flow run.

Signals are generated at the store's 200 Hz without mains (nothing for the notch to remove)
and scaled to model units (µV / 100, as standardization does); one window per recording
covers the whole recording, and recording ``i`` goes to split ``splits[i % len(splits)]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from neurolm.samples import SFREQ
from neurolm.standardize import StandardizedRecording
from neurolm.synth.signal import synth_signal
from neurolm.vocab import VOCAB
from storage.signal_store import SignalStore

#: 10-20 sites of the default montage (all in the channel vocabulary).
MONTAGE = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7", "T8", "P7", "P8",
           "FZ", "CZ", "PZ")


def synth_signal_store(url: str, n_recordings: int = 8, seconds: float = 120.0, n_ch: int = 8, seed: int = 0,
                       states: bool = True, splits: Sequence[str] = ("train", "train", "train", "val")) -> str:
    """Write ``n_recordings`` recordings of ``n_ch`` channels x ``seconds``; returns the store version id."""
    names = MONTAGE[:n_ch]
    ch_idx = tuple(VOCAB.index(n) for n in names)
    n = int(round(seconds * SFREQ))
    store = SignalStore.open(url, create=True)
    rec_rows, win_rows = [], []
    for i in range(n_recordings):
        rid = f"synth-{i:03d}"
        data = synth_signal(n_ch, SFREQ, seconds, seed=seed * 10_007 + i, ch_names=names, mains_hz=None,
                            states=states) / 100.0
        rec = StandardizedRecording(data=data.astype(np.float32), ch_names=names, ch_indices=ch_idx,
                                    orig_sfreq=SFREQ, duration_s=seconds)
        store.write_recording(rid, rec, {"dataset": "synth"})
        split = splits[i % len(splits)]
        rec_rows.append({"recording_id": rid, "dataset": "synth", "subject": f"s{i}", "session": "",
                         "source_path": f"/synthetic/{rid}.edf", "ch_names": ",".join(names), "n_channels": n_ch,
                         "duration_s": seconds, "orig_sfreq": SFREQ, "n_samples": n, "flags": "", "split": split})
        win_rows.append({"recording_id": rid, "start": 0, "length": n, "split": split})
    store.write_table("recordings", pd.DataFrame(rec_rows))
    store.write_table("windows", pd.DataFrame(win_rows))
    return store.version_id
