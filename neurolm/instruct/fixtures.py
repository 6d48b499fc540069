"""Small labeled token corpora and untrained model folders, for tests and trying instruction tuning on CPU.

Why here and not in tests: tests, benchmarks and the demo need the same inputs, built through the real
APIs (``storage.token_corpus`` for the corpus, ``neurolm.lm.io.save_lm`` for the model).

The corpus's codes depend on the class: every token of a (task, label) window is drawn from its own
band of ``band`` codes, so a tiny model can learn the answers from the EEG alone. Manifest rows carry
the labeled-corpus columns ``task``, ``label``, ``label_name``, ``subject`` next to the usual ones; its
lineage says ``"kind": "labeled"``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import torch

from neurolm.instruct.tasks import get_task
from neurolm.lm.config import lm_preset
from neurolm.lm.io import save_lm
from neurolm.lm.model import NeuroLM
from schemas.io import write_table
from schemas.tables import CORPUS_MANIFEST
from storage import fs
from storage.token_corpus import CorpusLineage, ShardArrays, TokenCorpusStore

#: (channels, seconds) per window of each task in :func:`write_labeled_corpus` (small, all different)
SHAPES = {"TUAB": (4, 5), "TUEV": (4, 3), "SEED": (6, 4), "HMC": (3, 4), "Workload": (4, 2), "TUSL": (4, 5)}


def write_labeled_corpus(url: str, per_class: Mapping[str, int], codebook_size: int = 512, band: int = 8,
                         seed: int = 0, splits: Mapping[str, float] | None = None, **lineage_fields) -> str:
    """A complete labeled corpus: ``per_class[task]`` windows per label of each task; returns ``url``.

    ``splits``: fraction of each class's windows per split (default train 0.75, val 0.25).
    ``lineage_fields`` override the :class:`CorpusLineage` fields (all "synthetic" by default).
    """
    splits = dict(splits or {"train": 0.75, "val": 0.25})
    rng = np.random.default_rng(seed)
    codes, ch, tm, off, rows = [], [], [], [0], []
    base = 0
    for value, n in per_class.items():
        task = get_task(value)
        n_ch, n_sec = SHAPES[task.label_task]
        for label in range(task.n_classes):
            lo = base % max(1, codebook_size - band)
            base += band
            names = [s for s, f in splits.items() for _ in range(int(round(f * n)))]
            names = (names + [next(iter(splits))] * n)[:n]
            for j in range(n):
                codes.append(rng.integers(lo, lo + band, n_ch * n_sec))
                ch.append(np.tile(np.arange(n_ch), n_sec))
                tm.append(np.repeat(np.arange(n_sec), n_ch))
                off.append(off[-1] + n_ch * n_sec)
                rows.append({"recording_id": f"{task.name}-{label}-{j}", "window_start": 0, "length": n_sec * 200,
                             "n_tokens": n_ch * n_sec, "split": names[j], "dataset": task.dataset,
                             "task": task.label_task, "label": label, "label_name": task.class_names[label],
                             "subject": f"s{j % 4}"})
    fields = dict(store_version="synthetic", store_content=f"labeled seed={seed} {dict(per_class)}",
                  vocab_version="synthetic", tokenizer_sha256="synthetic", tokenizer_config_hash="synthetic",
                  datasets=None, splits=None, shard_size=len(rows),
                  info={"codebook_size": codebook_size, "kind": "labeled"}, kind="labeled",
                  tasks=tuple(sorted({r["task"] for r in rows})))
    fields.update(lineage_fields)
    lin = CorpusLineage(**fields)
    store = TokenCorpusStore.open(url, create=True)
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    arrs = ShardArrays(np.concatenate(codes), np.concatenate(ch), np.concatenate(tm), np.asarray(off, dtype=np.int64))
    table = pd.DataFrame(rows)
    v.write_shard(0, arrs, table, codebook_size=codebook_size)
    v.finalize([0], extra={"codebook_size": codebook_size})
    man = v.manifest()
    if "task" not in man.columns:  # a store whose manifest keeps only the core columns: add the label columns
        for col in ("task", "label", "label_name", "subject"):
            man[col] = table[col].to_numpy()
        write_table(man, CORPUS_MANIFEST, fs.join(v.url, "tables", "manifest.parquet"))
    store.set_current(v.version_id)
    return url


def save_untrained_model(directory: str, config: str = "tiny", seed: int = 0) -> str:
    """A freshly initialised model (random codebook) in the ``save_lm`` layout; returns ``directory``."""
    torch.manual_seed(seed)
    model = NeuroLM(lm_preset(config), chan_init_std=0.02)
    if model.config.input_mode == "codes":
        cb = torch.randn_like(model.codebook)
        model.set_codebook(cb / cb.norm(dim=1, keepdim=True))
    return save_lm(model, directory)
