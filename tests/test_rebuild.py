"""Versioned rebuilds: new version beside the old, readers unaffected, atomic switch, resume, list/remove."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from neurolm.errors import ConfigError, StoreError
from neurolm.fanout import local_map
from neurolm.ingest import IngestState, discover, make_batches, process_batch
from neurolm.ingest.rebuild import (
    GONE_REASON,
    make_rebuild_params,
    rebuild_store,
    remove_store_version,
    target_versions,
    version_summaries,
)
from neurolm.standardize import StandardizeConfig
from neurolm.synth.writers import write_recording
from storage import versions as V
from storage.signal_store import SignalStore

SF = 250.0
NAMES = ("EEG FP1-REF", "EEG FP2-REF", "EEG CZ-REF")


def _write_source(root, n=4, seconds=80.0):
    """n small EDFs under <subject>/<session>/ with strong 50 Hz hum (so the notch matters)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SF)) / SF
    for i in range(n):
        x = rng.normal(scale=20.0, size=(3, t.size)) + 40.0 * np.sin(2 * np.pi * 50.0 * t)
        path = root / f"S{i // 2}" / f"ses{i % 2}" / "rec.edf"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_recording(path, "edf", x, SF, NAMES)


def _ingest(src, url, cfg):
    """The library ingestion path (what flows/ingest.py runs), without Prefect."""
    store = SignalStore.open(url, create=True, config=cfg)
    state = IngestState.load(store, "run-0")
    diff = state.plan(discover(str(src), "toy"), "toy")
    for batch in make_batches(diff.to_ingest, 8):
        state.add(process_batch(batch, store.url, store.version_id, run_id="run-0"))
    state.finalize()
    return store


@pytest.fixture
def store(tmp_path):
    src = tmp_path / "src"
    _write_source(src)
    url = str(tmp_path / "store")
    _ingest(src, url, StandardizeConfig(notch_hz=60.0))
    return url, src


def test_rebuild_new_notch_switches_at_the_end(store):
    url, src = store
    old = SignalStore.open(url)
    rid = sorted(old.committed_ids())[0]
    before = old.read_signal(rid)
    old_tables = {n: old.read_table(n) for n in ("recordings", "windows")}
    seen = []

    def observe(fn, batches, on_outcome, labels=None):
        """Between batches the old version is current, complete and unchanged for readers."""
        store_url, vid = fn.keywords["store_url"], fn.keywords["version_id"]
        for b in batches:
            assert V.read_store_meta(store_url)["current"] == old.version_id
            fresh = SignalStore.open(store_url)
            assert fresh.version_id == old.version_id
            np.testing.assert_array_equal(fresh.read_signal(rid), before)
            np.testing.assert_array_equal(old.read_signal(rid), before)
            seen.append(len(SignalStore.open(store_url, version=vid).committed_ids()))
            local_map(fn, [b], on_outcome)

    params = make_rebuild_params(store=url, notch_hz=50.0, batch_size=2)
    assert target_versions(params)[0] == old.version_id
    result = rebuild_store(params, observe, run_id="rb-1")
    assert result.status == "switched" and result.n_ingested == 4 and result.n_resumed == 0
    assert seen == [0, 2]  # the new version filled up while the old one stayed current
    new = SignalStore.open(url)
    assert new.version_id == result.new_version != old.version_id
    assert result.outputs == {"store": new.url, "store_version": new.version_id}
    assert new.config.notch_hz == 50.0 and new.version_meta["status"] == "complete"
    # the old reader still reads the old data; the new data lost the 50 Hz hum
    np.testing.assert_array_equal(old.read_signal(rid), before)
    after = new.read_signal(rid)
    assert after.shape == before.shape

    def hum(x):
        spec = np.abs(np.fft.rfft(x, axis=1)).mean(axis=0)
        f = np.fft.rfftfreq(x.shape[1], 1 / 200.0)
        return spec[np.argmin(abs(f - 50))]

    assert hum(after) < hum(before) / 20
    # exactly what a fresh ingest under the new config stores
    fresh_url = str(Path(url).parent / "fresh")
    fresh = _ingest(src, fresh_url, StandardizeConfig(notch_hz=50.0))
    assert fresh.version_id == new.version_id
    assert fresh.content_hash(tables=[]) == new.content_hash(tables=[])
    # tables carried over: same recordings, same splits, same windows
    for name, df in old_tables.items():
        got = new.read_table(name)
        assert len(got) == len(df) > 0
    assert dict(zip(*new.read_table("recordings")[["recording_id", "split"]].T.values)) == \
        dict(zip(*old_tables["recordings"][["recording_id", "split"]].T.values))
    assert set(new.read_table("catalog")["status"]) == {"ingested"}

    # unchanged config: nothing to do
    again = rebuild_store(make_rebuild_params(store=url, notch_hz=50.0))
    assert again.status == "up_to_date" and "already at this config" in again.message

    # list and remove
    versions = {v["version_id"]: v for v in version_summaries(url)}
    assert versions[new.version_id]["current"] and not versions[old.version_id]["current"]
    assert versions[new.version_id]["recordings"] == 4 and versions[new.version_id]["notch_hz"] == 50.0
    with pytest.raises(StoreError, match="current version"):
        remove_store_version(url, new.version_id)
    with pytest.raises(StoreError, match="no version"):
        remove_store_version(url, "v-000000000000")
    remove_store_version(url, old.version_id)
    assert [v["version_id"] for v in version_summaries(url)] == [new.version_id]


def test_crashed_rebuild_resumes_and_removed_sources(store):
    url, src = store
    old_vid = SignalStore.open(url).version_id
    params = make_rebuild_params(store=url, l_freq=0.5, batch_size=2)

    def crash_after_first(fn, batches, on_outcome, labels=None):
        local_map(fn, batches[:1], on_outcome)
        raise RuntimeError("worker node lost")

    with pytest.raises(RuntimeError, match="node lost"):
        rebuild_store(params, crash_after_first, run_id="rb-crash")
    assert V.read_store_meta(url)["current"] == old_vid  # nothing switched
    _, new_vid = target_versions(params)
    assert V.read_version_meta(url, new_vid)["status"] == "building"
    assert len(SignalStore.open(url, version=new_vid).committed_ids()) == 2

    os.remove(src / "S1" / "ses1" / "rec.edf")  # vanished since the last ingest
    calls = []

    def count(fn, batches, on_outcome, labels=None):
        calls.append(sum(len(b) for b in batches))
        local_map(fn, batches, on_outcome)

    result = rebuild_store(params, count, run_id="rb-resume")
    assert calls == [1]  # two resumed from markers, one gone, one redone
    assert (result.n_resumed, result.n_ingested, result.n_removed) == (2, 1, 1)
    new = SignalStore.open(url)
    assert new.version_id == new_vid and new.config.l_freq == 0.5
    cat = new.read_table("catalog")
    assert (cat["status"] == "removed").sum() == 1
    assert cat.loc[cat["status"] == "removed", "reason"].iloc[0] == GONE_REASON
    assert len(new.read_table("recordings")) == 3


def test_lost_batch_refuses_to_switch(store):
    url, _ = store
    old_vid = SignalStore.open(url).version_id
    params = make_rebuild_params(store=url, h_freq=40.0, batch_size=2)

    def lose_one(fn, batches, on_outcome, labels=None):
        local_map(fn, batches[1:], on_outcome)

    with pytest.raises(StoreError, match="incomplete.*resume"):
        rebuild_store(params, lose_one)
    assert V.read_store_meta(url)["current"] == old_vid


def test_bad_arguments_fail_before_work(store, tmp_path):
    url, _ = store
    with pytest.raises(ConfigError, match="notch_hz"):
        make_rebuild_params(store=url, notch_hz=500.0)
    with pytest.raises(ConfigError, match="workers"):
        make_rebuild_params(store=url, workers=0)
    with pytest.raises(ConfigError, match="either"):
        target_versions(make_rebuild_params(store=url, notch_hz=50.0, no_notch=True))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("standardize:\n  wobble: 3\n")
    with pytest.raises(ConfigError, match="wobble"):
        target_versions(make_rebuild_params(store=url, config_file=str(cfg)))
    cfg.write_text("l_freq: -1\n")
    with pytest.raises(ConfigError, match="invalid standardization"):
        target_versions(make_rebuild_params(store=url, config_file=str(cfg)))
    with pytest.raises(ConfigError, match="no signal store"):
        target_versions(make_rebuild_params(store=str(tmp_path / "nowhere")))
    cfg.write_text("notch_hz: 50\nh_freq: 45\n")
    old, new = target_versions(make_rebuild_params(store=url, config_file=str(cfg)))
    assert old != new and len(V.list_version_ids(url)) == 1  # planning writes nothing


def test_build_without_switch_then_switch(store):
    url, _ = store
    old_vid = SignalStore.open(url).version_id
    built = rebuild_store(make_rebuild_params(store=url, notch_hz=50.0, switch=False))
    assert built.status == "complete" and V.read_store_meta(url)["current"] == old_vid
    assert V.read_version_meta(url, built.new_version)["status"] == "complete"
    calls = []

    def record(fn, batches, on_outcome, labels=None):
        calls.append(len(batches))
        local_map(fn, batches, on_outcome)

    switched = rebuild_store(make_rebuild_params(store=url, notch_hz=50.0), record)
    assert switched.status == "switched" and switched.n_resumed == 4 and calls == [0]
    assert V.read_store_meta(url)["current"] == built.new_version


def test_labelled_recordings_keep_their_channel_list(store):
    """A downstream-dataset recording (it has labels) keeps its channel list through a rebuild."""
    import pandas as pd

    from neurolm.ingest.rebuild import items_from_version

    url, _ = store
    st = SignalStore.open(url)
    rids = sorted(st.committed_ids())
    st.write_table("labels", pd.DataFrame([{"task": "toy", "recording_id": rids[0], "subject": "toy:S0",
                                            "start": 0, "length": 2000, "label": 1, "label_name": "yes",
                                            "split": "train"}]))
    items, removed = items_from_version(url, st.version_id)
    by_id = {it.recording_id: it for it in items}
    assert removed == [] and sorted(by_id) == rids
    assert by_id[rids[0]].channels == tuple(st.recording_meta(rids[0])["ch_names"]) == ("FP1", "FP2", "CZ")
    assert all(by_id[r].channels is None for r in rids[1:])
    assert {it.subject_key for it in items} == {"toy:S0", "toy:S1"}
    result = rebuild_store(make_rebuild_params(store=url, notch_hz=50.0))
    new = SignalStore.open(url)
    assert result.status == "switched" and len(new.read_table("labels")) == 1
    assert new.recording_meta(rids[0])["ch_names"] == ["FP1", "FP2", "CZ"]


def test_ingest_after_a_rebuild_writes_the_current_version(store):
    """The next incremental ingest adds to the rebuilt version (its config), not to the old one."""
    from neurolm.ingest import open_store

    url, src = store
    result = rebuild_store(make_rebuild_params(store=url, notch_hz=50.0))
    _write_source(src / "late", n=1)  # a file that arrives after the rebuild
    store2 = open_store(url)
    assert store2.version_id == result.new_version and store2.config.notch_hz == 50.0
    state = IngestState.load(store2, "run-late")
    diff = state.plan(discover(str(src), "toy"), "toy")
    assert len(diff.to_ingest) == 1  # the rebuilt catalog knows the four older files
    for batch in make_batches(diff.to_ingest, 8):
        state.add(process_batch(batch, store2.url, store2.version_id, run_id="run-late"))
    state.finalize()
    assert len(SignalStore.open(url).committed_ids()) == 5
    assert len(SignalStore.open(url, version=result.old_version).committed_ids()) == 4


def test_channel_list_crop_and_subject_key_survive_a_rebuild(tmp_path):
    """The commit marker keeps the item's channel list (and order), end crop and subject key; a rebuild
    re-ingests with them, so the new version stores the same channels in the same order and length."""
    from dataclasses import replace

    from neurolm.ingest.rebuild import items_from_version

    src = tmp_path / "src"
    _write_source(src, n=2)
    url = str(tmp_path / "store")
    store = SignalStore.open(url, create=True, config=StandardizeConfig(notch_hz=60.0))
    state = IngestState.load(store, "run-0")
    items = sorted((f.item for f in state.plan(discover(str(src), "toy"), "toy").to_ingest),
                   key=lambda it: it.recording_id)
    special = replace(items[0], channels=("CZ", "FP1"), crop_end_s=5.0, subject_key="site:patient-7")
    state.add(process_batch([special, items[1]], store.url, store.version_id, run_id="run-0"))
    state.finalize()
    rid, plain = special.recording_id, items[1].recording_id
    attrs = store.recording_meta(rid)["attrs"]
    assert (attrs["channels"], attrs["crop_end_s"], attrs["subject_key"]) == (["CZ", "FP1"], 5.0, "site:patient-7")
    before = {r: store.recording_meta(r) for r in (rid, plain)}
    assert before[rid]["ch_names"] == ["CZ", "FP1"] and before[plain]["ch_names"] == ["FP1", "FP2", "CZ"]
    assert before[plain]["n_samples"] - before[rid]["n_samples"] == 5 * 200  # 5 s cut at 200 Hz

    got = {it.recording_id: it for it in items_from_version(url, store.version_id)[0]}
    assert got[rid].channels == ("CZ", "FP1") and got[rid].crop_end_s == 5.0
    assert got[rid].subject_key == "site:patient-7" and got[plain].channels is None
    result = rebuild_store(make_rebuild_params(store=url, notch_hz=50.0))
    new = SignalStore.open(url)
    assert result.status == "switched" and new.version_id != store.version_id
    for r in (rid, plain):
        meta = new.recording_meta(r)
        assert (meta["ch_names"], meta["n_samples"]) == (before[r]["ch_names"], before[r]["n_samples"])
    rec = new.read_table("recordings").set_index("recording_id")
    assert rec.loc[rid, "subject_key"] == "site:patient-7" and rec.loc[rid, "ch_names"] == "CZ,FP1"
