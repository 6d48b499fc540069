"""TokenCorpus: random access, streaming, shuffling, torch wrappers, stage-2 targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurolm.corpus.reader import TokenCorpus, collate_tokens, next_second_targets
from neurolm.corpus.synthetic import synthetic_shard, write_synthetic_corpus
from neurolm.corpus.torch_data import TokenDataset, TokenIterableDataset
from neurolm.vocab import PAD_INDEX


@pytest.fixture(scope="module")
def corpus_url(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("tc") / "corpus")
    write_synthetic_corpus(url, n_samples=45, shard_size=10, seed=7, codebook_size=300)
    return url


def _truth() -> list[tuple[np.ndarray, np.ndarray, np.ndarray, dict]]:
    """The 45 samples as generated, before any storage: the fixture's seeded generator replayed in memory
    (codes, ch, time, manifest row), so no expected value is read back through the store or the reader."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(5):
        arrs, rows = synthetic_shard(rng, 10 if k < 4 else 5, first_sample=k * 10, codebook_size=300)
        for (a, b), row in zip(zip(arrs.offsets[:-1], arrs.offsets[1:]), rows.to_dict("records")):
            out.append((arrs.codes[a:b], arrs.ch[a:b], arrs.time[a:b], row))
    return out


TRUTH = _truth()


def test_random_access_matches_shards(corpus_url):
    tc = TokenCorpus.open(corpus_url, cache_shards=2)
    assert len(tc) == 45 and tc.codebook_size == 300
    truth = TRUTH
    assert len(truth) == 45 and tc.n_tokens == sum(len(c) for c, *_ in truth)
    assert tc.manifest["recording_id"].tolist() == [r["recording_id"] for *_, r in truth]
    assert tc.manifest["n_tokens"].tolist() == [len(c) for c, *_ in truth]
    for i in [0, 9, 10, 44, 23, 3, -1]:
        s = tc[i]
        c, ch, t, _ = truth[i]
        assert s["codes"].dtype == np.int64
        np.testing.assert_array_equal(s["codes"], c)
        np.testing.assert_array_equal(s["ch"], ch)
        np.testing.assert_array_equal(s["time"], t)
    assert len(tc._cache) <= 2
    with pytest.raises(IndexError):
        tc[45]
    s = tc[0]
    s["codes"][0] += 1  # samples are copies: mutating one never corrupts the cache
    assert tc[0]["codes"][0] == truth[0][0][0]
    # random (isolated) accesses read slices without loading shards; sequential ones load the shard
    cold = TokenCorpus.open(corpus_url, cache_shards=2)
    for i in (3, 14, 25, 36):
        np.testing.assert_array_equal(cold[i]["codes"], truth[i][0])
    assert len(cold._cache) == 0
    for i in range(20, 30):
        np.testing.assert_array_equal(cold[i]["time"], truth[i][2])
    assert list(cold._cache) == [2]


def test_split_selection(corpus_url):
    full = TokenCorpus.open(corpus_url)
    val = TokenCorpus.open(corpus_url, splits=["val"])
    want = [i for i, (*_, row) in enumerate(TRUTH) if row["split"] == "val"]
    assert want == [i for i in range(45) if i % 5 == 4]
    assert len(val) == 9 and list(val.selected) == want
    assert val.n_tokens == sum(len(TRUTH[i][0]) for i in want)
    for j, i in enumerate(want):
        np.testing.assert_array_equal(val[j]["codes"], TRUTH[i][0])
    streamed = [s["codes"].tobytes() for s in val.iter_samples(shuffle=True, seed=4)]
    assert sorted(streamed) == sorted(TRUTH[i][0].astype(np.int64).tobytes() for i in want)
    assert len(TokenDataset(corpus_url, splits=("train",))) == 36
    with pytest.raises(Exception, match="no samples of split"):
        TokenCorpus.open(corpus_url, splits=["test"])


def test_open_by_version_dir(corpus_url):
    tc = TokenCorpus.open(corpus_url)
    tc2 = TokenCorpus.open(tc.version.url)
    assert tc2.version_id == tc.version_id and len(tc2) == 45


def test_iter_samples_order_shuffle_and_workers(corpus_url):
    tc = TokenCorpus.open(corpus_url)
    seq = [s["codes"] for s in tc.iter_samples()]
    assert len(seq) == 45
    for i in range(45):
        np.testing.assert_array_equal(seq[i], TRUTH[i][0])
    key = lambda s: s["codes"].tobytes()  # noqa: E731
    sh1 = [key(s) for s in tc.iter_samples(shuffle=True, seed=1)]
    sh1b = [key(s) for s in tc.iter_samples(shuffle=True, seed=1)]
    sh2 = [key(s) for s in tc.iter_samples(shuffle=True, seed=2)]
    assert sh1 == sh1b and sh1 != sh2 and sorted(sh1) == sorted(key(s) for s in tc.iter_samples())
    parts = [[key(s) for s in tc.iter_samples(worker=w, n_workers=3)] for w in range(3)]
    assert sorted(sum(parts, [])) == sorted(sh1) and all(parts)


def test_next_second_targets_is_same_channel_one_second_later():
    n_ch, n_sec = 3, 4
    codes = np.arange(n_ch * n_sec) * 10
    time = np.repeat(np.arange(n_sec), n_ch)
    y = next_second_targets(codes, time)
    assert list(y[: n_ch * (n_sec - 1)]) == list(codes[n_ch:])
    assert list(y[-n_ch:]) == [-1] * n_ch


def test_torch_wrappers_and_collate(corpus_url):
    ds = TokenDataset(corpus_url)
    assert len(ds) == 45
    loader = DataLoader(ds, batch_size=4, shuffle=False, collate_fn=collate_tokens)
    batch = next(iter(loader))
    assert batch["codes"].shape == (4, 1024) and batch["codes"].dtype == torch.long
    n0 = len(ds[0]["codes"])
    assert batch["mask"][0].sum() == n0 and not batch["mask"][0, n0:].any()
    assert (batch["ch"][0, n0:] == PAD_INDEX).all() and (batch["targets"][0, n0 - 5:] == -1).all()
    assert n0 == len(TRUTH[0][0]) and batch["codes"][0, :n0].tolist() == TRUTH[0][0].tolist()
    it = TokenIterableDataset(corpus_url, shuffle=True, seed=3)
    two_workers = DataLoader(it, batch_size=None, num_workers=2)
    got = sorted(s["codes"].numpy().tobytes() for s in two_workers)
    assert got == sorted(c.astype(np.int64).tobytes() for c, *_ in TRUTH)
