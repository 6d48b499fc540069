"""Pretraining runs: kill -9 and rerun gives the uninterrupted trajectory; run folders keyed by the inputs;
bad inputs refused with one clear error before any training step."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from lm_resume import assert_same_trajectory, kill_9_and_rerun, run_single_threaded

from neurolm.corpus.fixtures import save_random_tokenizer
from storage.corpus_format import ShardArrays
from neurolm.errors import ConfigError, StoreError
from neurolm.lm.params import PretrainParams
from neurolm.lm.run import load_history, prepare, pretrain
from storage.checkpoints import list_checkpoints
from storage.token_corpus import CorpusLineage, TokenCorpusStore

def short_corpus(url: str, n: int = 12, n_ch: int = 4, n_sec: int = 8, **lineage_fields) -> str:
    """A complete corpus of ``n`` random samples of ``n_ch`` x ``n_sec`` tokens (every 5th is val)."""
    fields = dict(store_version="synthetic", store_content=f"{n}/{n_ch}/{n_sec}", vocab_version="synthetic",
                  tokenizer_sha256="synthetic", tokenizer_config_hash="synthetic", datasets=None, splits=None,
                  shard_size=n, info={"codebook_size": 512})
    fields.update(lineage_fields)
    lin = CorpusLineage(**fields)
    store = TokenCorpusStore.open(url, create=True)
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    rng = np.random.default_rng(0)
    k = n_ch * n_sec
    codes = rng.integers(0, 512, n * k)
    arrs = ShardArrays(codes, np.tile(np.arange(n_ch), n * n_sec), np.tile(np.repeat(np.arange(n_sec), n_ch), n),
                       np.arange(n + 1, dtype=np.int64) * k)
    rows = pd.DataFrame({"recording_id": [f"r{i}" for i in range(n)], "window_start": 0, "n_tokens": k,
                         "split": ["val" if i % 5 == 4 else "train" for i in range(n)], "dataset": "synthetic"})
    v.write_shard(0, arrs, rows, codebook_size=512)
    v.finalize([0], extra={"codebook_size": 512})
    store.set_current(v.version_id)
    return url


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("pt")
    corpus, tok = short_corpus(str(d / "corpus")), str(d / "tok")  # 10 train, 2 val samples of 32 tokens
    save_random_tokenizer(tok, "tiny", seed=0)
    return corpus, tok


def params(inputs, out, **kw) -> PretrainParams:
    corpus, tok = inputs
    base = dict(corpus=corpus, tokenizer=tok, out=str(out), config="tiny", steps=10, batch_size=2,
                text_batch_size=1, text_seq_len=16, max_len=32, ckpt_every=2, keep_last=1)
    return PretrainParams(**{**base, **kw})


def test_kill_9_and_rerun_continues_the_same_trajectory(inputs, tmp_path):
    ref = run_single_threaded(pretrain, params(inputs, tmp_path / "a"))  # uninterrupted
    p = params(inputs, tmp_path / "b")
    run_dir = prepare(p).run_dir
    kill_9_and_rerun("neurolm.lm.params:PretrainParams", "neurolm.lm.run:pretrain", p, run_dir)
    wa = assert_same_trajectory(load_history, ref["run_dir"], run_dir)

    # a finished run with the same inputs does nothing; changed inputs get their own run folder
    again = pretrain(params(inputs, tmp_path / "a"))
    assert again["nothing_to_do"] and again["steps_done_now"] == 0 and again["run_dir"] == ref["run_dir"]
    assert prepare(params(inputs, tmp_path / "a", steps=12)).run_dir != ref["run_dir"]
    assert prepare(params(inputs, tmp_path / "a", input_mode="codes", lr=1e-3)).run_dir != ref["run_dir"]
    # the exported model is the final weights in the save_lm layout
    from neurolm.lm.io import load_lm

    model = load_lm(ref["outputs"]["model"])
    sd = model.state_dict()
    assert all(torch.equal(sd[k], wa[k]) for k in wa)
    text = ref["lineage"]["text"]
    assert "bundled sample text" in text["source"] and text["tokens"] > 16


def test_bad_inputs_are_refused_before_training(inputs, tmp_path):
    corpus, tok = inputs
    cases = [
        (dict(corpus=short_corpus(str(tmp_path / "v"), vocab_version="other-v9")), ConfigError, "vocabulary"),
        (dict(corpus=short_corpus(str(tmp_path / "t"), tokenizer_config_hash="0" * 16)), ConfigError,
         "tokenizer config"),
        (dict(corpus=short_corpus(str(tmp_path / "s"), tokenizer_sha256="f" * 64)), ConfigError, "not the one"),
        (dict(corpus=short_corpus(str(tmp_path / "k"), info={"codebook_size": 8192})), ConfigError, "8192 codes"),
    ]
    cases.append((dict(corpus=short_corpus(str(tmp_path / "noval"), n=4)), ConfigError, "train and val"))
    short = tmp_path / "short.yaml"
    short.write_text("model: {preset: tiny, block_size: 6}\n")
    long_corpus = short_corpus(str(tmp_path / "long"), n_ch=1, n_sec=8)  # 8 tokens, 8 seconds each
    cases.append((dict(config=str(short), corpus=long_corpus, text_batch_size=0), ConfigError, "position table"))
    cases.append((dict(max_len=16), ConfigError, "max_len"))
    long_text = tmp_path / "lt.yaml"
    long_text.write_text("model: {preset: tiny, block_size: 20}\ntrain: {preset: tiny, text_seq_len: 30}\n")
    cases.append((dict(config=str(long_text), text_seq_len=None), ConfigError, "text windows of 30"))
    bad_bin = tmp_path / "foreign.bin"
    np.full(100, 60000, dtype=np.uint16).tofile(bad_bin)
    cases.append((dict(text=str(bad_bin)), ConfigError, "not a GPT-2 token file"))
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            pretrain(params(inputs, tmp_path / "o", **kw))
    assert not os.path.exists(tmp_path / "o")  # nothing was written for any of them


def test_corrupt_and_foreign_checkpoints_are_refused(inputs, tmp_path):
    p = params(inputs, tmp_path / "r", steps=2, ckpt_every=1, keep_last=1)
    first = pretrain(p)
    run_dir = first["run_dir"]
    os.remove(os.path.join(run_dir, "summary.json"))  # as if killed right after its last checkpoint
    (step, path), = list_checkpoints(os.path.join(run_dir, "checkpoints"))
    with open(os.path.join(path, "state.safetensors"), "r+b") as f:  # a flipped byte on disk
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.warns(UserWarning), pytest.raises(StoreError, match="corrupt"):
        pretrain(p)
    other = pretrain(params(inputs, tmp_path / "r", steps=3, ckpt_every=1, keep_last=1))  # another run
    shutil.rmtree(path)
    shutil.copytree(other["files"]["checkpoint"], os.path.join(run_dir, "checkpoints", os.path.basename(path)))
    with pytest.raises(ConfigError, match="belongs to run"):
        pretrain(p)
