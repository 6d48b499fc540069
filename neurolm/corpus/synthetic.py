"""Synthetic token corpora with random codes, for reader tests and benchmarks.

Why: the reader and its benchmark must not depend on a trained tokenizer or a
signal store; a corpus written through the same store API with random codes
exercises exactly the code paths training uses. NeuroLM-shaped by default:
19–23 channels × floor(1024 / n_ch) seconds per sample.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurolm.samples import PATCH, sample_seconds
from storage.token_corpus import CorpusLineage, CorpusVersion, ShardArrays, TokenCorpusStore


def synthetic_shard(rng: np.random.Generator, n_samples: int, first_sample: int = 0,
                    codebook_size: int = 8192, channel_counts: tuple[int, ...] = (19, 23)
                    ) -> tuple[ShardArrays, pd.DataFrame]:
    codes, ch, tm, off, rows = [], [], [], [0], []
    for i in range(n_samples):
        n_ch = int(channel_counts[(first_sample + i) % len(channel_counts)])
        n_sec = sample_seconds(n_ch)
        codes.append(rng.integers(0, codebook_size, n_ch * n_sec, dtype=np.int64))
        ch.append(np.tile(np.arange(n_ch, dtype=np.int64), n_sec))
        tm.append(np.repeat(np.arange(n_sec, dtype=np.int64), n_ch))
        off.append(off[-1] + n_ch * n_sec)
        rows.append({"recording_id": f"syn-{(first_sample + i) // 8:06d}", "window_start": ((first_sample + i) % 8) * n_sec * PATCH,
                     "n_tokens": n_ch * n_sec, "split": "val" if (first_sample + i) % 5 == 4 else "train",
                     "dataset": "synthetic"})
    arrs = ShardArrays(np.concatenate(codes), np.concatenate(ch), np.concatenate(tm), np.asarray(off, dtype=np.int64))
    return arrs, pd.DataFrame(rows)


def write_synthetic_corpus(url: str, n_samples: int, shard_size: int = 1024, seed: int = 0,
                           codebook_size: int = 8192) -> CorpusVersion:
    """A complete corpus (current version) of ``n_samples`` random NeuroLM-shaped samples."""
    store = TokenCorpusStore.open(url, create=True)
    lin = CorpusLineage(store_version="synthetic", store_content=f"seed={seed}", vocab_version="synthetic",
                        tokenizer_sha256="synthetic", tokenizer_config_hash="synthetic", datasets=None,
                        splits=None, shard_size=shard_size, info={"codebook_size": codebook_size})
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    rng = np.random.default_rng(seed)
    shards = list(range((n_samples + shard_size - 1) // shard_size))
    for k in shards:
        if v.is_committed(k):
            continue
        n = min(shard_size, n_samples - k * shard_size)
        arrs, rows = synthetic_shard(rng, n, first_sample=k * shard_size, codebook_size=codebook_size)
        v.write_shard(k, arrs, rows, codebook_size=codebook_size)
    v.finalize(shards, extra={"codebook_size": codebook_size})
    store.set_current(v.version_id)
    return v
