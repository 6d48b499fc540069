"""Small real inputs for the token-corpus stage: a signal store with windows and a random tokenizer.

Why in the library and not in tests: the tests, the benchmarks and anyone
trying the stage without an EEG archive need the same two things, built through
the real APIs (``SignalStore`` + ``StandardizedRecording``; ``VQTokenizer`` +
``storage.checkpoints.save_checkpoint``), with no ingestion run in between.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from neurolm.vocab import VOCAB, VOCAB_VERSION
from neurolm.samples import SFREQ, sample_seconds
from neurolm.standardize import StandardizedRecording
from neurolm.tokenizer import VQTokenizer, preset
from neurolm.tokenizer.weights import model_weights, tokenizer_metadata
from storage.checkpoints import save_checkpoint
from storage.signal_store import SignalStore


def build_signal_store(url: str, n_recordings: int = 6, n_ch: int = 8, windows_per_recording: int = 1,
                       datasets: Sequence[str] = ("dsa", "dsb"), seed: int = 0,
                       splits: Sequence[str] = ("train", "train", "val")) -> str:
    """A store whose recordings hold whole NeuroLM windows (floor(1024/n_ch) s each); returns its version id.

    Recording i belongs to ``datasets[i % len]`` and split ``splits[i % len]``.
    Signals are band-limited noise plus a per-recording rhythm (model units, ~±0.5).
    """

    rng = np.random.default_rng(seed)
    store = SignalStore.open(url, create=True)
    win = sample_seconds(n_ch) * SFREQ
    ch_idx = tuple(range(0, 3 * n_ch, 3))[:n_ch]
    names = tuple(VOCAB[i] for i in ch_idx)
    rec_rows, win_rows = [], []
    for i in range(n_recordings):
        rid = f"rec-{i:03d}"
        n = win * windows_per_recording
        t = np.arange(n) / 200.0
        freq = 4.0 + 2.0 * (i % 5)
        data = (0.3 * rng.standard_normal((n_ch, n)) + 0.5 * np.sin(2 * np.pi * freq * t)[None]
                * rng.uniform(0.5, 1.5, (n_ch, 1))).astype(np.float32)
        rec = StandardizedRecording(data=data, ch_names=names, ch_indices=ch_idx, orig_sfreq=256.0,
                                    duration_s=n / 200.0)
        store.write_recording(rid, rec, {"dataset": datasets[i % len(datasets)]})
        split = splits[i % len(splits)]
        rec_rows.append({"recording_id": rid, "dataset": datasets[i % len(datasets)], "subject": f"s{i}",
                         "session": "", "source_path": f"/synthetic/{rid}.edf", "ch_names": ",".join(names),
                         "n_channels": n_ch, "duration_s": n / 200.0, "orig_sfreq": 256.0, "n_samples": n,
                         "flags": "", "split": split})
        for w in range(windows_per_recording):
            win_rows.append({"recording_id": rid, "start": w * win, "length": win, "split": split})
    store.write_table("recordings", pd.DataFrame(rec_rows))
    store.write_table("windows", pd.DataFrame(win_rows))
    return store.version_id


def save_random_tokenizer(directory: str, preset_name: str = "tiny", seed: int = 0, step: int = 0,
                          vocab_version: str = VOCAB_VERSION, **overrides) -> str:
    """An untrained (randomly initialised, random codebook) tokenizer checkpoint; returns its directory."""
    import torch


    cfg = preset(preset_name, **overrides)
    torch.manual_seed(seed)
    model = VQTokenizer(cfg).eval()
    return save_checkpoint(directory, model_weights(model), {"step": int(step)},
                           {"config_hash": cfg.config_hash(), "vocab_version": vocab_version, "seed": seed},
                           metadata=tokenizer_metadata(cfg))
