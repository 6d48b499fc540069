"""The token-corpus store format: versions, shards, markers, manifest, content hash."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest

from neurolm.errors import StoreError
from storage import fs
from storage.token_corpus import CorpusLineage, ShardArrays, TokenCorpusStore


def lineage(**kw) -> CorpusLineage:
    base = dict(store_version="v-abc", store_content="h1", vocab_version="vocab-1", tokenizer_sha256="s1",
                tokenizer_config_hash="cfg1", datasets=("a", "b"), splits=("train",), shard_size=4,
                info={"store_url": "/somewhere"})
    base.update(kw)
    return CorpusLineage(**base)


def synth_shard(rng, n_samples, n_ch=3, n_sec=4, codebook=512, start=0):
    codes, ch, tm, off = [], [], [], [0]
    for _ in range(n_samples):
        codes.append(rng.integers(0, codebook, n_ch * n_sec))
        ch.append(np.tile(np.arange(n_ch) * 7, n_sec))
        tm.append(np.repeat(np.arange(n_sec), n_ch))
        off.append(off[-1] + n_ch * n_sec)
    arrs = ShardArrays(np.concatenate(codes), np.concatenate(ch), np.concatenate(tm), np.array(off))
    rows = pd.DataFrame({"recording_id": [f"rec{start + i}" for i in range(n_samples)],
                         "window_start": [1000 * i for i in range(n_samples)],
                         "n_tokens": [n_ch * n_sec] * n_samples, "split": "train", "dataset": "a"})
    return arrs, rows


def test_version_id_depends_on_identity_only():
    a = lineage()
    assert a.version_id() == lineage(info={"store_url": "s3://elsewhere"}).version_id()
    assert a.version_id() == lineage(datasets=("b", "a")).version_id()  # order-free selection
    for change in (dict(tokenizer_sha256="s2"), dict(store_version="v-new"), dict(store_content="h2"),
                   dict(tokenizer_config_hash="cfg2"), dict(splits=("train", "val")), dict(shard_size=8)):
        assert lineage(**change).version_id() != a.version_id(), change
    assert a.version_id().startswith("c-") and len(a.version_id()) == 14


def test_shard_roundtrip_marker_manifest_and_hash(tmp_path):
    rng = np.random.default_rng(0)
    store = TokenCorpusStore.open(str(tmp_path / "corpus"), create=True)
    lin = lineage()
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    a0, r0 = synth_shard(rng, 4)
    a1, r1 = synth_shard(rng, 2, n_ch=5, n_sec=2, start=4)
    v.write_shard(0, a0, r0, codebook_size=512)
    assert v.committed_shards() == [0] and not v.is_complete()
    with pytest.raises(StoreError, match="already committed"):
        v.write_shard(0, a0, r0)
    v.write_shard(1, a1, r1)
    back = v.read_shard(1, verify=True)
    np.testing.assert_array_equal(back.codes, a1.codes)
    np.testing.assert_array_equal(back.offsets, a1.offsets)
    assert back.codes.dtype == np.uint16 and back.ch.dtype == np.uint8 and back.time.dtype == np.uint8
    with pytest.raises(StoreError, match="not complete"):
        store.resolve(v.version_id)
    status = v.finalize([0, 1])
    assert status["n_samples"] == 6 and status["n_tokens"] == 4 * 12 + 2 * 10
    store.set_current(v.version_id)
    assert store.resolve().version_id == v.version_id
    man = v.manifest()
    assert list(man["sample"]) == list(range(6)) and list(man["shard"]) == [0] * 4 + [1] * 2
    assert list(man["recording_id"]) == [f"rec{i}" for i in range(6)]
    assert list(man["n_tokens"]) == [12] * 4 + [10] * 2
    # the stored bytes, read with zarr directly (not through the store's reader), are the test's codes
    import zarr

    g = zarr.open_group(fs.zarr_store(v.shard_url(0)), mode="r")
    np.testing.assert_array_equal(g["codes"][:], a0.codes)
    np.testing.assert_array_equal(g["offsets"][:], [0, 12, 24, 36, 48])
    # the marker's checksums are sha256 over dtype name + raw bytes of what the test wrote (documented format)
    marker = json.loads(open(v.marker_url(0)).read())
    codes_u16 = np.asarray(a0.codes).astype("<u2").tobytes()
    assert marker["sha256"]["codes"] == hashlib.sha256(b"uint16" + codes_u16).hexdigest()
    assert marker["sha256"]["codes"] == hashlib.sha256(b"uint16" + g["codes"][:].astype("<u2").tobytes()).hexdigest()
    rows = {"recording_id": [f"rec{i}" for i in range(4)], "window_start": [0, 1000, 2000, 3000],
            "n_tokens": [12] * 4, "split": ["train"] * 4, "dataset": ["a"] * 4}
    assert marker["rows_sha256"] == hashlib.sha256(
        json.dumps(rows, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    # the content hash: equal for the same shards written again elsewhere (other time, other root),
    # different when one code differs; never compared with a value the store computed itself
    h = v.content_hash()
    assert h == status["content_hash"]

    def rewrite(root, codes0):
        other = TokenCorpusStore.open(str(tmp_path / root), create=True).version(lin.version_id())
        other.ensure_lineage(lin)
        other.write_shard(0, ShardArrays(codes0, a0.ch, a0.time, a0.offsets), r0, codebook_size=512)
        other.write_shard(1, a1, r1)
        return other.content_hash()

    assert rewrite("again", a0.codes) == h
    flipped = a0.codes.copy()
    flipped[5] = (flipped[5] + 1) % 512
    assert rewrite("flipped", flipped) != h


def test_corrupt_and_invalid_shards_are_refused(tmp_path):
    rng = np.random.default_rng(1)
    store = TokenCorpusStore.open(str(tmp_path / "c"), create=True)
    v = store.version(lineage().version_id())
    arrs, rows = synth_shard(rng, 3)
    with pytest.raises(StoreError, match="outside codebook"):
        v.write_shard(0, arrs, rows, codebook_size=8)
    with pytest.raises(StoreError, match="manifest rows"):
        v.write_shard(0, arrs, rows.iloc[:2])
    bad = ShardArrays(arrs.codes, arrs.ch + 300, arrs.time, arrs.offsets)
    with pytest.raises(StoreError, match="256"):
        v.write_shard(0, bad, rows)
    assert v.committed_shards() == []
    v.write_shard(0, arrs, rows)
    # flip the stored codes behind the marker's back: verify catches it
    import zarr
    g = zarr.open_group(fs.zarr_store(v.shard_url(0)), mode="r+")
    g["codes"][0] = (int(g["codes"][0]) + 1) % 512
    with pytest.raises(StoreError, match="corrupt"):
        v.read_shard(0, verify=True)
    with pytest.raises(StoreError, match="not committed"):
        v.finalize([0, 1])


def test_uncommitted_debris_is_invisible_and_discarded(tmp_path):
    rng = np.random.default_rng(2)
    store = TokenCorpusStore.open(str(tmp_path / "c"), create=True)
    v = store.version(lineage().version_id())
    arrs, rows = synth_shard(rng, 2)
    v.write_shard(0, arrs, rows)
    os.makedirs(v.shard_url(1))
    open(os.path.join(v.shard_url(1), "zarr.json"), "w").write("{garbage")
    assert v.committed_shards() == [0] and not v.is_committed(1)
    assert v.discard_uncommitted([0, 1]) == [1]
    assert not os.path.exists(v.shard_url(1)) and os.path.exists(v.shard_url(0))


def test_lineage_mismatch_and_root_checks(tmp_path):
    store = TokenCorpusStore.open(str(tmp_path / "c"), create=True)
    lin = lineage()
    v = store.version(lin.version_id())
    v.ensure_lineage(lin)
    v.ensure_lineage(lineage(info={"store_url": "moved"}))  # same identity: fine
    with pytest.raises(StoreError, match="hashes to"):
        v.ensure_lineage(lineage(tokenizer_sha256="other"))
    lin_json = fs.read_json(fs.join(v.url, "lineage.json"))
    lin_json["identity"]["tokenizer_sha256"] = "tampered"
    fs.write_json_atomic(fs.join(v.url, "lineage.json"), lin_json)
    with pytest.raises(StoreError, match="other inputs"):
        v.ensure_lineage(lin)
    with pytest.raises(StoreError, match="no token corpus"):
        TokenCorpusStore.open(str(tmp_path / "nothing"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        TokenCorpusStore.open(str(tmp_path / "busy"), create=True)
    with pytest.raises(StoreError, match="no complete version"):
        store.resolve()


def test_memory_url_roundtrip():
    rng = np.random.default_rng(3)
    store = TokenCorpusStore.open("memory://corpus-test-roundtrip", create=True)
    v = store.version(lineage().version_id())
    v.ensure_lineage(lineage())
    arrs, rows = synth_shard(rng, 3)
    v.write_shard(0, arrs, rows)
    v.finalize([0])
    np.testing.assert_array_equal(v.read_shard(0, verify=True).codes, arrs.codes)
    assert len(v.manifest()) == 3
