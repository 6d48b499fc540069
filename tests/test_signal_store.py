"""SignalStore on real Zarr: round trips, sample windows, hashing, versions, opening errors."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pydantic
import pytest

from neurolm.errors import ConfigError, StoreError
from storage import fs
from neurolm.samples import sample_seconds
from storage import signal_store
from storage.signal_store import SCALE, SignalStore, quantize

CFG = {"sfreq": 200.0, "l_freq": 0.1, "h_freq": 75.0}
CFG2 = {"sfreq": 200.0, "l_freq": 0.5, "h_freq": 45.0}


@dataclass(frozen=True)
class Rec:
    """Shape of neurolm.standardize.StandardizedRecording (the store only reads these fields)."""

    data: np.ndarray
    ch_names: tuple
    ch_indices: tuple
    orig_sfreq: float = 256.0
    duration_s: float = 0.0
    channel_flags: dict = field(default_factory=dict)
    flags: tuple = ()


def make_rec(n_ch: int = 4, seconds: float = 30.0, seed: int = 0, amp: float = 0.3) -> Rec:
    rng = np.random.default_rng(seed)
    n = int(seconds * 200)
    data = (rng.standard_normal((n_ch, n)) * amp).astype(np.float32)
    return Rec(data, tuple(f"C{i}" for i in range(n_ch)), tuple(range(10, 10 + n_ch)), duration_s=n / 200)


def recordings_df(ids):
    return pd.DataFrame({
        "recording_id": ids, "dataset": "synth", "subject": [f"s-{i}" for i in ids], "session": "",
        "source_path": [f"/x/{i}.edf" for i in ids], "ch_names": "C0,C1", "n_channels": 2, "duration_s": 30.0,
        "orig_sfreq": 256.0, "n_samples": 6000, "flags": "", "split": "train",
    })


@pytest.fixture(params=["local", "file", "memory"])
def url(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "store")
        return
    if request.param == "file":
        yield "file://" + str(tmp_path / "store")
        return
    u = f"memory://neurolm-test-{uuid.uuid4().hex[:8]}/store"
    yield u
    fs.rm(u)


def test_roundtrip_within_quantisation(url):
    s = SignalStore.open(url, create=True, config=CFG)
    rec = make_rec(n_ch=5, seconds=40.0)
    s.write_recording("synth:sub-01_run-1", rec, {"dataset": "synth", "arr": np.arange(3)})
    assert s.committed_ids() == ["synth:sub-01_run-1"]
    assert s.is_committed("synth:sub-01_run-1") and not s.is_committed("other")
    out = s.read_signal("synth:sub-01_run-1")
    assert out.dtype == np.float32 and out.shape == rec.data.shape
    assert np.abs(out - rec.data).max() <= SCALE / 2 + 1e-6
    part = s.read_signal("synth:sub-01_run-1", 1000, 1400)
    np.testing.assert_array_equal(part, out[:, 1000:1400])
    meta = s.recording_meta("synth:sub-01_run-1")
    assert meta["ch_names"] == list(rec.ch_names) and meta["ch_indices"] == list(rec.ch_indices)
    assert meta["n_samples"] == 8000 and meta["sfreq"] == 200.0 and meta["attrs"]["arr"] == [0, 1, 2]
    # A fresh reader (another process would do the same) sees the same data.
    again = SignalStore.open(url)
    assert again.version_id == s.version_id
    np.testing.assert_array_equal(again.read_signal("synth:sub-01_run-1"), out)
    assert again.verify_recording("synth:sub-01_run-1")
    with pytest.raises(IndexError):
        s.read_signal("synth:sub-01_run-1", 0, 8001)
    with pytest.raises(KeyError, match="not committed"):
        s.read_signal("missing", 0, 1)


def test_clipping_and_nonfinite_counted(tmp_path):
    s = SignalStore.open(str(tmp_path / "st"), create=True, config=CFG)
    rec = make_rec(n_ch=2, seconds=2.0)
    data = rec.data.copy()
    data[0, :5] = 40.0  # 4000 µV: beyond ±3276.7 µV
    data[1, 7] = -50.0
    data[1, 9] = np.nan
    m = s.write_recording("r", Rec(data, rec.ch_names, rec.ch_indices))
    assert m["n_clipped"] == 6 and m["n_nonfinite"] == 1
    out = s.read_signal("r")
    assert np.allclose(out[0, :5], 32.767) and np.isclose(out[1, 7], -32.767) and out[1, 9] == 0.0


def test_read_sample_is_one_chunk_window(tmp_path):
    from neurolm.ingest.windows import recording_windows

    s = SignalStore.open(str(tmp_path / "st"), create=True, config=CFG)
    rec = make_rec(n_ch=19, seconds=53 * 3 + 15)
    s.write_recording("r19", rec)
    L = sample_seconds(19) * 200
    assert L == 53 * 200 and s.sample_length("r19") == L
    assert s._array("r19").chunks == (19, L)  # one sample window == one chunk
    # 174 s: NeuroLM crops 10 s (164 s left: 3 windows of 53 s); cropping 20 s leaves 154 s: 2 windows.
    assert s.sample_count("r19") == 3 and s.sample_count("r19", crop_end_s=20) == 2
    full = s.read_signal("r19")
    windows = recording_windows(19, full.shape[1])
    assert [(i * L, L) for i in range(3)] == windows  # the WINDOWS table's rows, in order
    for i, (start, length) in enumerate(windows):
        np.testing.assert_array_equal(s.read_sample("r19", i), full[:, start:start + length])
    with pytest.raises(IndexError):
        s.read_sample("r19", 3)  # the remainder is not a sample
    s.write_recording("r4", make_rec(n_ch=4, seconds=140))
    assert s._array("r4").chunks == (4, 64 * 200) and s.sample_count("r4") == 2


def test_rewrite_and_delete(tmp_path):
    s = SignalStore.open(str(tmp_path / "st"), create=True, config=CFG)
    s.write_recording("a", make_rec(seed=1))
    new = make_rec(seed=2, seconds=10)
    s.write_recording("a", new)
    assert np.abs(s.read_signal("a") - new.data).max() <= SCALE / 2 + 1e-6
    s.delete_recording("a")
    assert s.committed_ids() == [] and not [n for n in fs.listdir(os.path.join(s.version_url, "signals.zarr", "recordings"))
                                            if n == "a" or n.startswith("a@")]  # every generation removed
    with pytest.raises(ConfigError, match="invalid recording_id"):
        s.write_recording("../escape", new)


def test_content_hash_order_independent(tmp_path):
    recs = {f"r{i}": make_rec(seed=i) for i in range(3)}
    hashes = []
    for order in (["r0", "r1", "r2"], ["r2", "r0", "r1"]):
        s = SignalStore.open(str(tmp_path / "-".join(order)), create=True, config=CFG)
        for rid in order:
            s.write_recording(rid, recs[rid])
        df = recordings_df(order)
        s.write_table("recordings", df)
        hashes.append(s.content_hash(verify=True))
    assert hashes[0] == hashes[1]
    # Any content change changes the hash: one sample of one recording, or one table cell.
    d = recs["r1"].data.copy()
    d[0, 0] += 0.01
    s.write_recording("r1", Rec(d, recs["r1"].ch_names, recs["r1"].ch_indices))
    assert s.content_hash() != hashes[0]
    s.write_recording("r1", recs["r1"])
    assert s.content_hash() == hashes[0]
    s.write_table("recordings", recordings_df(["r2", "r0", "r1"]).assign(split=["train", "val", "train"]))
    assert s.content_hash() != hashes[0]


def test_tables_through_store(url):
    s = SignalStore.open(url, create=True, config=CFG)
    assert len(s.read_table("recordings")) == 0 and list(s.read_table("windows").columns)[:2] == ["recording_id", "start"]
    s.write_table("windows", pd.DataFrame({"recording_id": ["a", "a"], "start": [0, 10600], "length": 10600,
                                           "split": "train"}))
    assert s.read_table("windows")["start"].tolist() == [0, 10600]
    with pytest.raises(ConfigError, match="unknown table"):
        s.read_table("nope")


class PydCfg(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True)
    sfreq: float = 200.0
    l_freq: float = 0.1

    def config_hash(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def test_versions_create_switch_remove(tmp_path):
    url = str(tmp_path / "st")
    v1 = SignalStore.open(url, create=True, config=CFG)
    v1.write_recording("a", make_rec(seed=1))
    # A second config is a second version; it does not become current by itself.
    v2 = SignalStore.open(url, create=True, config=CFG2)
    assert v2.version_id != v1.version_id and v2.current_version() == v1.version_id
    v2.write_recording("b", make_rec(seed=2))
    assert {v["version_id"] for v in v1.list_versions()} == {v1.version_id, v2.version_id}
    reader = SignalStore.open(url)  # opens current = v1
    before = reader.read_signal("a")
    v2.switch_version(v2.version_id)
    assert json.load(open(os.path.join(url, "store.json")))["current"] == v2.version_id
    # The old reader keeps reading its version; new readers get the new one.
    np.testing.assert_array_equal(reader.read_signal("a"), before)
    assert reader.committed_ids() == ["a"] and SignalStore.open(url).committed_ids() == ["b"]
    with pytest.raises(StoreError, match="current version"):
        reader.remove_version(v2.version_id)
    with pytest.raises(StoreError, match="has it open"):
        reader.remove_version(v1.version_id)
    v2.remove_version(v1.version_id)
    assert [v["version_id"] for v in v2.list_versions()] == [v2.version_id]
    with pytest.raises(StoreError, match="no version"):
        SignalStore.open(url, version=v1.version_id)
    # Same config again → same version (resume), pydantic configs use their own config_hash().
    assert SignalStore.open(url, create=True, config=CFG2).version_id == v2.version_id
    p = SignalStore.open(url, create=True, config=PydCfg(), make_current=True)
    assert p.current_version() == p.version_id and p.version_meta["config_hash"] == PydCfg().config_hash()
    p.set_status("complete")
    assert SignalStore.open(url).version_meta["status"] == "complete"
    with pytest.raises(ConfigError, match="config hash"):
        SignalStore.open(url, version=p.version_id, config=CFG)


def test_open_errors(tmp_path):
    with pytest.raises(StoreError, match=r"no signal store at .* \(run neurolm ingest first\)"):
        SignalStore.open(str(tmp_path / "absent"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not writable"):
        SignalStore.open(str(blocker / "store"), create=True, config=CFG)
    url = str(tmp_path / "st")
    s = SignalStore.open(url, create=True, config=CFG)
    meta = json.load(open(os.path.join(url, "store.json")))
    json.dump({**meta, "format_version": 99}, open(os.path.join(url, "store.json"), "w"))
    with pytest.raises(StoreError, match="format_version 99"):
        SignalStore.open(url)
    json.dump(meta, open(os.path.join(url, "store.json"), "w"))
    vjson = os.path.join(s.version_url, "version.json")
    vmeta = json.load(open(vjson))
    json.dump({**vmeta, "vocab_version": "old-vocab"}, open(vjson, "w"))
    with pytest.raises(StoreError, match="channel vocabulary 'old-vocab'"):
        SignalStore.open(url)
    json.dump({"kind": "something-else"}, open(os.path.join(url, "store.json"), "w"))
    with pytest.raises(StoreError, match="not a neurolm signal store"):
        SignalStore.open(url)


def test_real_standardize_config_and_recording(tmp_path):
    from neurolm.standardize import StandardizeConfig, StandardizedRecording
    from storage.versions import version_id_for

    url = str(tmp_path / "st")
    s = SignalStore.open(url, create=True)  # default StandardizeConfig()
    assert s.config == StandardizeConfig() and s.version_id == version_id_for(StandardizeConfig())
    assert s.version_meta["config_hash"] == StandardizeConfig().config_hash() and s.scale == pytest.approx(SCALE)
    base = make_rec(n_ch=3, seconds=12)
    rec = StandardizedRecording(base.data, ("FP1", "FP2", "CZ"), (0, 2, 41), orig_sfreq=250.0, duration_s=12.0,
                                channel_flags={"CZ": ("flat",)}, flags=("flat:CZ",))
    s.write_recording("std", rec, {"source": "x.edf"})
    meta = s.recording_meta("std")
    assert meta["flags"] == ["flat:CZ"] and meta["channel_flags"] == {"CZ": ["flat"]} and meta["orig_sfreq"] == 250.0
    with pytest.raises(ConfigError, match="Hz"):
        s.write_recording("bad-rate", StandardizedRecording(base.data, rec.ch_names, rec.ch_indices, 250.0, 12.0,
                                                            sfreq=100.0))
    # A config in µV (unit_divisor 1) keeps 0.1 µV steps: scale follows the unit.
    uv = SignalStore.open(url, create=True, config=StandardizeConfig(unit_divisor=1.0))
    assert uv.version_id != s.version_id and uv.config.unit_divisor == 1.0 and uv.scale == pytest.approx(0.1)
    big = Rec(base.data * 100, base.ch_names, base.ch_indices)
    uv.write_recording("uv", big)
    assert np.abs(uv.read_signal("uv") - big.data).max() <= 0.05 + 1e-4


def test_create_without_config_opens_current_version(tmp_path):
    url = str(tmp_path / "st")
    custom = SignalStore.open(url, create=True, config=CFG2)  # first version: becomes current
    again = SignalStore.open(url, create=True)  # no config asked for: keep using the store's current version
    assert again.version_id == custom.version_id and len(again.list_versions()) == 1


def _quantize_spec(x: np.ndarray, scale: float) -> tuple[np.ndarray, int, int]:
    """The quantisation rule written out plainly (whole array, fresh temporaries)."""
    y = np.asarray(x, np.float32) / np.float32(scale)
    bad = ~np.isfinite(y)
    y = np.where(bad, np.float32(0), y)
    return np.clip(np.rint(y), -32767, 32767).astype("<i2"), int((np.abs(y) > 32767).sum()), int(bad.sum())


def test_quantize_matches_the_plain_rule_on_edge_values():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5000)) * 10).astype(np.float32)
    x[0, :12] = [32.7665, 32.7675, 32.7685, -32.7675, -32.7685, 40.0, -40.0, np.nan, np.inf, -np.inf, 1e38, -0.0004]
    x[2, 100:105] = 0.0005  # halfway between steps: round half to even
    for data, scale in ((x, SCALE), (x[:, 7:4007], SCALE), (x * 3, 0.003), (x[1:2, :0], SCALE)):
        q, n_clip, n_bad = quantize(data, scale)
        q2, n_clip2, n_bad2 = _quantize_spec(data, scale)
        np.testing.assert_array_equal(q, q2)
        assert (n_clip, n_bad) == (n_clip2, n_bad2)
    out = np.empty(x.shape, "<i2")
    q, _, _ = quantize(x, SCALE, out=out)
    assert q is out and np.array_equal(out, _quantize_spec(x, SCALE)[0])


@pytest.mark.parametrize("seconds", [130.0, 96.0, 0.005])
def test_direct_chunk_files_equal_zarr_writes(tmp_path, monkeypatch, seconds):
    """The local fast path writes the very files zarr-python writes (same names, same bytes)."""
    rec = make_rec(n_ch=6, seconds=seconds, seed=5)
    data = rec.data.copy()
    data[:, 64 * 200: 128 * 200] = 0.0  # window 1 (64 s at 6 channels) all zero: stored (the fill is MISSING)
    rec = Rec(data, rec.ch_names, rec.ch_indices)
    stores = {}
    for direct in (False, True):
        monkeypatch.setattr(signal_store, "DIRECT_CHUNK_WRITES", direct)
        s = SignalStore.open(str(tmp_path / f"st-{direct}"), create=True, config=CFG)
        s.write_recording("r", rec)
        stores[direct] = s
    roots = {d: os.path.join(s.version_url, "signals.zarr", "recordings", s.recording_meta("r")["array"])
             for d, s in stores.items()}
    files = {d: sorted(os.path.relpath(os.path.join(dp, f), r) for dp, _, fs_ in os.walk(r) for f in fs_)
             for d, r in roots.items()}
    assert files[True] == files[False] and "zarr.json" in files[True]
    for rel in files[True]:
        with open(os.path.join(roots[True], rel), "rb") as a, open(os.path.join(roots[False], rel), "rb") as b:
            assert a.read() == b.read(), rel
    np.testing.assert_array_equal(stores[True].read_signal("r"), stores[False].read_signal("r"))
    assert stores[True].content_hash() == stores[False].content_hash()
    assert stores[True].verify_recording("r")
