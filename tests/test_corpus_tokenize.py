"""Tokenization job: codes equal a direct encode_codes call, selection, versions, lineage, input errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from neurolm.corpus.fixtures import build_signal_store, save_random_tokenizer
from neurolm.corpus.reader import TokenCorpus
from neurolm.corpus.run import tokenize_local
from neurolm.corpus.tokenize import prepare_job
from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer import build_sample, load_tokenizer
from storage import fs
from storage.signal_store import SignalStore
from storage.token_corpus import TokenCorpusStore


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    store, ckpt = str(d / "store"), str(d / "tok")
    build_signal_store(store, n_recordings=4, n_ch=16, seed=0, splits=("train", "train", "val", "heldout"))
    save_random_tokenizer(ckpt, "tiny", seed=0)
    return d, store, ckpt


@pytest.fixture(scope="module")
def built(inputs):
    d, store, ckpt = inputs
    job = prepare_job(store, ckpt, str(d / "corpus"), shard_size=5)
    out = tokenize_local(job, batch_size=3)
    return job, out


def test_codes_equal_direct_encode_codes(inputs, built):
    d, store_url, ckpt = inputs
    job, out = built
    assert out["status"]["status"] == "complete" and out["done_now"] == len(job.plans) == 3  # 12 samples / 5
    tc = TokenCorpus.open(str(d / "corpus"))
    assert len(tc) == 12 and tc.n_tokens == 12 * 256
    store = SignalStore.open(store_url)
    tok = load_tokenizer(ckpt)
    man = tc.manifest
    samples = []
    for row in man.itertuples():
        meta = store.recording_meta(row.recording_id)
        n_ch = len(meta["ch_indices"])
        n_sec = row.n_tokens // n_ch
        sig = store.read_signal(row.recording_id, row.window_start, row.window_start + n_sec * 200)
        samples.append(build_sample(sig, meta["ch_indices"], max_tokens=tok.config.max_tokens))
    batch = {k: torch.stack([s[k] for s in samples]) for k in ("x", "ch", "time", "mask")}
    direct = tok.encode_codes(batch["x"], batch["ch"], batch["time"], batch["mask"]).numpy()
    for i in range(len(tc)):
        s = tc[i]
        n = len(s["codes"])
        np.testing.assert_array_equal(s["codes"], direct[i, :n])
        np.testing.assert_array_equal(s["ch"], batch["ch"][i, :n].numpy())
        np.testing.assert_array_equal(s["time"], batch["time"][i, :n].numpy())
        assert (direct[i, n:] == -1).all()
    # time-major: all 16 channels of second 0, then second 1 ...
    s0 = tc[0]
    assert list(s0["time"][:17]) == [0] * 16 + [1] and len(set(s0["ch"][:16])) == 16
    # each 64-s store window is covered by 4 consecutive 16-s samples (tiny tokenizer: 256 tokens)
    win = store.read_table("windows")
    assert win["length"].tolist() == [64 * 200] * 4
    starts = man[man["recording_id"] == "rec-000"]["window_start"].tolist()
    assert starts == [0, 3200, 6400, 9600]
    assert len(np.unique(np.concatenate([tc[i]["codes"] for i in range(12)]))) > 20  # not a constant code


def test_lineage_recorded_and_rerun_does_nothing(inputs, built):
    d, store_url, ckpt = inputs
    job, _ = built
    v = TokenCorpusStore.open(str(d / "corpus")).resolve()
    lin = v.lineage()
    store = SignalStore.open(store_url)
    import glob
    import hashlib

    assert lin["identity"]["store_version"] == store.version_id
    [weights] = glob.glob(os.path.join(ckpt, "ckpt-*", "model.safetensors"))  # the one checkpoint of the run dir
    with open(weights, "rb") as f:  # hashed here over the bytes on disk, not by the checkpoint code
        assert lin["identity"]["tokenizer_sha256"] == hashlib.sha256(f.read()).hexdigest()
    assert lin["identity"]["tokenizer_config_hash"] == load_tokenizer(ckpt).config.config_hash()
    assert lin["info"]["codebook_size"] == 512 and v.version_id == job.version_id
    mtimes = {k: os.path.getmtime(v.marker_url(k)) for k in v.committed_shards()}
    again = tokenize_local(prepare_job(store_url, ckpt, str(d / "corpus"), shard_size=5))
    assert again["done_now"] == 0 and again["shards"] == []
    assert {k: os.path.getmtime(v.marker_url(k)) for k in v.committed_shards()} == mtimes


def test_new_checkpoint_and_selection_make_new_versions(inputs, built):
    d, store_url, ckpt = inputs
    job, _ = built
    corpus = str(d / "corpus")
    other = save_random_tokenizer(str(d / "tok2"), "tiny", seed=1)
    job2 = prepare_job(store_url, str(d / "tok2"), corpus, shard_size=5)
    assert job2.version_id != job.version_id and job2.checkpoint == other
    tokenize_local(job2)
    root = TokenCorpusStore.open(corpus)
    assert set(root.list_versions()) >= {job.version_id, job2.version_id} and root.current() == job2.version_id
    a, b = TokenCorpus.open(corpus, version=job.version_id), TokenCorpus.open(corpus)
    assert not np.array_equal(a[0]["codes"], b[0]["codes"])  # other weights, other codes
    sel = prepare_job(store_url, ckpt, corpus, datasets=["dsa"], splits=["train"], shard_size=5)
    assert sel.version_id not in (job.version_id, job2.version_id)
    tokenize_local(sel)
    man = TokenCorpus.open(corpus).manifest
    assert set(man["dataset"]) == {"dsa"} and set(man["split"]) == {"train"} and len(man) == 4
    # held-out recordings (rec-003) only when asked for by name
    assert "rec-003" not in set(a.manifest["recording_id"])
    held = prepare_job(store_url, ckpt, corpus, splits=["heldout"], shard_size=5)
    assert held.n_samples == 4 and {s.recording_id for p in held.plans for s in p.samples} == {"rec-003"}
    # the same selection through a file:// URL of the same store is the same version
    same = prepare_job("file://" + store_url, ckpt, corpus, datasets=["dsa"], splits=["train"], shard_size=5)
    assert same.version_id == sel.version_id


def test_bad_inputs_fail_before_any_work(inputs, tmp_path):
    d, store_url, ckpt = inputs
    out = str(tmp_path / "never")
    with pytest.raises(StoreError, match="no signal store"):
        prepare_job(str(tmp_path / "nostore"), ckpt, out)
    with pytest.raises(StoreError, match="no tokenizer checkpoint"):
        prepare_job(store_url, str(tmp_path / "nockpt"), out)
    bad = save_random_tokenizer(str(tmp_path / "corrupt"), "tiny", seed=2)
    with open(os.path.join(bad, "model.safetensors"), "r+b") as f:
        f.seek(200)
        f.write(b"\x00garbage\x00")
    with pytest.raises(StoreError, match="corrupt|no good"):
        prepare_job(store_url, bad, out)
    save_random_tokenizer(str(tmp_path / "othervocab"), "tiny", seed=0, vocab_version="some-other-vocab")
    with pytest.raises(ConfigError, match="vocabulary mismatch"):
        prepare_job(store_url, str(tmp_path / "othervocab"), out)
    empty = SignalStore.open(str(tmp_path / "empty"), create=True)
    assert empty.read_table("windows").empty
    with pytest.raises(StoreError, match="has no windows"):
        prepare_job(str(tmp_path / "empty"), ckpt, out)
    with pytest.raises(ConfigError, match="not in store"):
        prepare_job(store_url, ckpt, out, datasets=["nope"])
    with pytest.raises(ConfigError, match="unknown split"):
        prepare_job(store_url, ckpt, out, splits=["training"])
    with pytest.raises(ConfigError, match="shard-size"):
        prepare_job(store_url, ckpt, out, shard_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            prepare_job(store_url, ckpt, out, device="cuda")
    with pytest.raises(StoreError, match="no windows of store"):
        prepare_job(store_url, ckpt, out, datasets=["dsb"], splits=["val"])
    assert not fs.exists(out)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match="not a token corpus"):
        prepare_job(store_url, ckpt, str(tmp_path / "foreign"))
    assert os.listdir(tmp_path / "foreign") == ["thesis.tex"]
