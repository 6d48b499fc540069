"""Small real inputs for evaluation and ``ask``: a labeled token corpus and a tiny model folder.

Built through the real APIs (``TokenCorpusStore`` + the validated manifest; ``NeuroLM`` +
``save_lm``), so tests and demos exercise the same code paths as real runs without a tuning run.
The labeled corpus follows the interface of ``neurolm tokenize --labeled`` (lineage ``kind:
labeled``; manifest columns ``task``, ``label``, ``label_name``, ``subject`` per sample).
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np
import pandas as pd

from storage.token_corpus import CorpusLineage, ShardArrays, TokenCorpusStore

#: (LABELS task, label, split, n_channels, n_seconds) of one labeled window
Window = tuple[str, int, str, int, int]


def write_labeled_corpus(url: str, windows: Sequence[Window], codebook_size: int = 512, seed: int = 0,
                         tokenizer_sha256: str = "synthetic", tokenizer_config_hash: str = "synthetic",
                         synthetic: bool = True) -> str:
    """A complete labeled corpus (current version) of random-code windows; returns its version id."""
    store = TokenCorpusStore.open(url, create=True)
    lin = CorpusLineage(store_version="synthetic", store_content=f"labeled seed={seed}", vocab_version="synthetic",
                        tokenizer_sha256=tokenizer_sha256, tokenizer_config_hash=tokenizer_config_hash,
                        datasets=None, splits=None, shard_size=len(windows),
                        info={"kind": "labeled", "codebook_size": codebook_size, "synthetic": synthetic},
                        kind="labeled")
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    rng = np.random.default_rng(seed)
    codes, ch, tm, off, rows = [], [], [], [0], []
    for i, (task, label, split, n_ch, n_sec) in enumerate(windows):
        n = n_ch * n_sec
        codes.append(rng.integers(0, codebook_size, n))
        ch.append(np.tile(np.arange(n_ch), n_sec))
        tm.append(np.repeat(np.arange(n_sec), n_ch))
        off.append(off[-1] + n)
        rows.append({"recording_id": f"{task.lower()}-{i:04d}", "window_start": 0, "length": n_sec * 200,
                     "n_tokens": n, "split": split, "dataset": task.lower(), "task": task, "label": int(label),
                     "label_name": str(label), "subject": f"s{i % 7}"})
    arrs = ShardArrays(*(np.concatenate(a).astype(np.int64) for a in (codes, ch, tm)), np.asarray(off, np.int64))
    if not v.is_committed(0):
        v.write_shard(0, arrs, pd.DataFrame(rows), codebook_size=codebook_size)
    v.finalize([0], extra={"codebook_size": codebook_size})
    store.set_current(v.version_id)
    return v.version_id


def save_tiny_model(directory: str, seed: int = 0, tokenizer: str | None = None,
                    lineage: dict | None = None) -> str:
    """A randomly initialised ``tiny`` NeuroLM folder (codes mode); the codebook from ``tokenizer`` if given.

    ``lineage`` is written to ``DIR/lineage.json`` (as a run folder's lineage would name the tokenizer).
    """
    import torch

    from neurolm.lm.config import lm_preset
    from neurolm.lm.io import save_lm
    from neurolm.lm.model import NeuroLM

    torch.manual_seed(seed)
    model = NeuroLM(lm_preset("tiny"), chan_init_std=0.02)
    if tokenizer is not None:
        from neurolm.lm.data import attach_tokenizer

        attach_tokenizer(model, tokenizer)
    else:
        model.set_codebook(torch.nn.functional.normalize(torch.randn_like(model.codebook), dim=-1))
    save_lm(model.eval(), directory)
    if lineage is not None:
        with open(os.path.join(directory, "lineage.json"), "w", encoding="utf-8") as f:
            json.dump(lineage, f, indent=1)
    return directory
