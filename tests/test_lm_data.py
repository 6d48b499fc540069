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
        check_corpus({"identity": {"tokenizer_config_hash": "0" * 16}, "info": {}}, {"train", "val"}, CFG)
    with pytest.raises(ConfigError, match="vocabulary"):
        check_corpus({"identity": {"vocab_version": "other-v9"}, "info": {}}, {"train", "val"}, CFG)


def test_codebook_comes_from_the_corpus_tokenizer(tmp_path):
    from neurolm.corpus.fixtures import save_random_tokenizer
    from storage.checkpoints import checkpoint_sha256

    d = save_random_tokenizer(str(tmp_path / "tok"))
    cfg, cb = tokenizer_codebook(d, {"tokenizer_sha256": checkpoint_sha256(d)})
    assert cfg == CFG.tokenizer and cb.shape == (512, 32)
    with pytest.raises(ConfigError, match="not the one"):
        tokenizer_codebook(d, {"tokenizer_sha256": "f" * 64})


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    """Signal store → random tiny tokenizer → token corpus, through the real APIs."""
    from neurolm.corpus.fixtures import build_signal_store, save_random_tokenizer
    from neurolm.corpus.run import tokenize_local
    from neurolm.corpus.tokenize import prepare_job

    d = tmp_path_factory.mktemp("lmcorpus")
    store, ckpt, corpus = str(d / "store"), str(d / "tok"), str(d / "corpus")
    build_signal_store(store, n_recordings=3, n_ch=8, seed=0, splits=("train", "val", "heldout"))
    save_random_tokenizer(ckpt, "tiny", seed=0)
    tokenize_local(prepare_job(store, ckpt, corpus, shard_size=4, splits=["train", "val", "heldout"]), batch_size=4)
    return store, ckpt, corpus


def test_features_batches_line_up_with_the_corpus_codes(real_corpus):
    from neurolm.lm.data import SignalPatches
    from neurolm.lm.model import NeuroLM
    from neurolm.tokenizer.weights import load_tokenizer

    store, ckpt, corpus = real_corpus
    train, val = open_corpus(corpus, CFG)
    assert "heldout" in set(train.manifest["split"])  # tokenized, yet never selected
    sig = SignalPatches(train.lineage)
    tok = load_tokenizer(ckpt)
    n = 0
    for c in (train, val):
        eb = EEGBatches(c, batch_size=2, max_len=256, drop_last=False, signals=sig)
        for b in eb.epoch(0):
            assert b["x"].shape == (b["codes"].shape[0], 256, 200)
            codes = tok.encode_codes(b["x"], b["ch"], b["time"], b["mask"])
            assert torch.equal(codes[b["mask"]], b["codes"][b["mask"]])  # same samples, same alignment
            n += b["x"].shape[0]
    heldout = int((train.manifest["split"] == "heldout").sum())
    assert n == len(train.manifest) - heldout and heldout > 0
    # the same order with or without signals: a codes run can be compared with a features run
    plain = EEGBatches(train, batch_size=2, max_len=256, access="index", seed=4)
    feats = EEGBatches(train, batch_size=2, max_len=256, signals=sig, seed=4)
    for a, b in zip(plain.epoch(1), feats.epoch(1)):
        assert torch.equal(a["codes"], b["codes"])
    torch.manual_seed(0)
    model = NeuroLM(lm_preset("tiny", input_mode="features")).eval()
    with torch.no_grad():
        out = model(next(iter(feats.epoch(0))))
    assert torch.isfinite(out["loss"])


def test_real_corpus_lineage_is_checked(real_corpus):
    from neurolm.tokenizer.config import preset as tokenizer_preset

    _, ckpt, corpus = real_corpus
    train, _ = open_corpus(corpus, CFG)  # the tiny tokenizer's hash: accepted
    other = lm_preset("tiny", tokenizer=tokenizer_preset("tiny", n_enc_layers=3))
    with pytest.raises(ConfigError, match="tokenizer config"):
        open_corpus(corpus, other)
    cfg, cb = tokenizer_codebook(ckpt, train.lineage)  # the corpus's own tokenizer: accepted
    assert cfg.config_hash() == CFG.tokenizer.config_hash()


@pytest.mark.parametrize("mode", ["codes", "features"])
def test_attach_tokenizer_installs_its_parts(real_corpus, mode):
    from neurolm.lm.data import attach_tokenizer
    from neurolm.lm.model import NeuroLM
    from neurolm.tokenizer.weights import load_tokenizer

    _, ckpt, corpus = real_corpus
    lineage = open_corpus(corpus, CFG)[0].lineage
    model = NeuroLM(lm_preset("tiny", input_mode=mode))
    attach_tokenizer(model, ckpt, lineage)
    tok = load_tokenizer(ckpt)
    if mode == "codes":
        assert torch.equal(model.codebook, tok.VQ.quantize.embedding.weight)
    else:
        ref = tok.VQ.encoder.state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in model.tokenizer.state_dict().items())
    with pytest.raises(ConfigError, match="expects"):
        from neurolm.tokenizer.config import preset as tokenizer_preset

        attach_tokenizer(NeuroLM(lm_preset("tiny", tokenizer=tokenizer_preset("tiny", code_dim=16))), ckpt)


def test_features_need_the_corpus_store(real_corpus, tmp_path):
    from neurolm.lm.data import SignalPatches

    with pytest.raises(ConfigError, match="signal store"):
        SignalPatches({"store_version": "synthetic", "info": {}})
    _, _, corpus = real_corpus
    lineage = open_corpus(corpus, CFG)[0].lineage
    with pytest.raises(Exception):
        SignalPatches(lineage, store_url=str(tmp_path / "nowhere"))
