"""Stage-2 batches from a real token corpus: checks before training, splits, held-out never read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolm.corpus.synthetic import synthetic_shard, write_synthetic_corpus
from neurolm.errors import ConfigError
from neurolm.lm.config import lm_preset
from neurolm.lm.data import EEGBatches, check_corpus, open_corpus, tokenizer_codebook
from neurolm.lm.targets import next_second_codes
from storage.token_corpus import CorpusLineage, TokenCorpusStore

CFG = lm_preset("tiny")  # 512 codes


def corpus_with_heldout(url: str, n: int = 12) -> None:
    """Synthetic corpus whose heldout samples carry a code (511) that no other sample has."""
    store = TokenCorpusStore.open(url, create=True)
    lin = CorpusLineage(store_version="synthetic", store_content="h", vocab_version="synthetic",
                        tokenizer_sha256="synthetic", tokenizer_config_hash="synthetic", datasets=None,
                        splits=None, shard_size=n, info={"codebook_size": 512})
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    arrs, rows = synthetic_shard(np.random.default_rng(0), n, codebook_size=511)  # codes < 511
    for i in range(0, n, 3):
        rows.loc[i, "split"] = "heldout"
        arrs.codes[arrs.offsets[i]:arrs.offsets[i + 1]] = 511
    v.write_shard(0, arrs, rows, codebook_size=512)
    v.finalize([0], extra={"codebook_size": 512})
    store.set_current(v.version_id)


def test_batches_splits_and_heldout(tmp_path):
    url = str(tmp_path / "c")
    corpus_with_heldout(url)
    train, val = open_corpus(url, CFG)
    assert len(train) + len(val) == 8 and len(val) >= 1
    seen = 0
    for c in (train, val):
        for b in EEGBatches(c, batch_size=2, drop_last=False, shuffle=False).epoch(0):
            assert b["codes"].shape == (b["codes"].shape[0], 1024)
            assert not bool((b["codes"][b["mask"]] == 511).any())
            assert torch.equal(b["targets"], next_second_codes(b["codes"], b["ch"], b["time"], b["mask"]))
            assert bool((b["targets"][~b["mask"]] == -1).all())
            seen += int(b["codes"].shape[0])
    assert seen == 8


def test_epochs_are_reproducible_and_differ(tmp_path):
    url = str(tmp_path / "c")
    write_synthetic_corpus(url, 20, shard_size=5, codebook_size=512)
    train, _ = open_corpus(url, CFG)
    eb = EEGBatches(train, batch_size=3, seed=1)
    a = [b["codes"] for b in eb.epoch(0)]
    assert len(a) == len(eb) == len(train) // 3
    assert all(torch.equal(x, y) for x, y in zip(a, [b["codes"] for b in eb.epoch(0)]))
    assert not all(torch.equal(x, y) for x, y in zip(a, [b["codes"] for b in eb.epoch(1)]))


def test_mismatched_corpora_are_refused(tmp_path):
    url = str(tmp_path / "big")
    write_synthetic_corpus(url, 10, codebook_size=8192)
    with pytest.raises(ConfigError, match="8192 codes"):
        open_corpus(url, CFG)
    url = str(tmp_path / "noval")
    write_synthetic_corpus(url, 3, codebook_size=512)  # samples 0-2 are all train
    with pytest.raises(ConfigError, match="train and val"):
        open_corpus(url, CFG)
    with pytest.raises(ConfigError, match="tokenizer config"):
        check_corpus({"tokenizer_config_hash": "0" * 16, "info": {}}, {"train", "val"}, CFG)


def test_codebook_comes_from_the_corpus_tokenizer(tmp_path):
    from neurolm.corpus.fixtures import save_random_tokenizer
    from storage.checkpoints import checkpoint_sha256

    d = save_random_tokenizer(str(tmp_path / "tok"))
    cfg, cb = tokenizer_codebook(d, {"tokenizer_sha256": checkpoint_sha256(d)})
    assert cfg == CFG.tokenizer and cb.shape == (512, 32)
    with pytest.raises(ConfigError, match="not the one"):
        tokenizer_codebook(d, {"tokenizer_sha256": "f" * 64})
