"""The batch worker and the run state, in one process (no Prefect, no Dask)."""

from __future__ import annotations

import dataclasses

import pytest

from neurolm.ingest import IngestState, discover, make_batches, open_store, process_batch
from neurolm.synth import default_ch_names, synth_signal, write_malformed, write_recording
from storage.signal_store import SignalStore

CH = default_ch_names(19)


@pytest.fixture()
def src(tmp_path):
    root = tmp_path / "src"
    write_recording(root / "s1" / "a.edf", "edf", synth_signal(19, 256.0, 80, seed=1, ch_names=CH), 256.0, CH)
    write_recording(root / "s2" / "b.bdf", "bdf", synth_signal(19, 512.0, 70, seed=2, ch_names=CH), 512.0, CH)
    write_malformed(root / "s3" / "bad.edf", "truncated")
    return root


def _items(root):
    return {f.rel_path: f.item for f in discover(str(root), "w", notch_hz=50.0)}


def test_batch_ingests_quarantines_and_skips_on_rerun(src, tmp_path):
    store = open_store(str(tmp_path / "store"))
    items = _items(src)
    missing = dataclasses.replace(items["s1/a.edf"], path=str(src / "gone.edf"), recording_id="w-gone")
    bad_id = dataclasses.replace(items["s2/b.bdf"], recording_id="bad/id")  # our bug, not the file's
    rows = process_batch([*items.values(), missing, bad_id], store.url, store.version_id, run_id="r1")
    st = {r["catalog_row"]["path"].rsplit("/", 1)[-1] + ("!" if r is rows[-1] else ""): r for r in rows}
    assert st["a.edf"]["status"] == st["b.bdf"]["status"] == "ingested"
    assert st["bad.edf"]["status"] == "quarantined" and "truncated" in st["bad.edf"]["reason"]
    assert st["gone.edf"]["status"] == "quarantined" and st["gone.edf"]["reason"].startswith("cannot stat")
    assert rows[-1]["status"] == "quarantined" and rows[-1]["reason"].startswith("internal error (a neurolm bug")
    assert "not a problem of the file" in rows[-1]["reason"] and ": ConfigError: invalid recording_id" in rows[-1]["reason"]
    rec = st["a.edf"]["recording_row"]
    assert rec["n_channels"] == 19 and rec["ch_names"].split(",")[0] == "FP1" and abs(rec["duration_s"] - 80) < 0.01
    meta = store.recording_meta(rec["recording_id"])
    assert meta["attrs"]["notch_hz"] == 50.0 and meta["attrs"]["recording_row"] == rec
    assert all(isinstance(v, (str, int, float, type(None))) for v in st["a.edf"]["catalog_row"].values())
    again = process_batch(list(items.values()), store.url, store.version_id, run_id="r2")
    assert sorted(r["status"] for r in again) == ["quarantined", "skipped", "skipped"]
    # another notch for the same file is another stored signal: rewritten, not skipped
    other = dataclasses.replace(items["s1/a.edf"], notch_hz=60.0)
    assert process_batch([other], store.url, store.version_id)[0]["status"] == "ingested"


def test_fixed_channel_set_is_reordered_and_enforced(src, tmp_path):
    store = open_store(str(tmp_path / "store"))
    it = _items(src)["s1/a.edf"]
    order = ("O2", "FP1", "FZ")
    row = process_batch([dataclasses.replace(it, channels=order)], store.url, store.version_id)[0]
    assert row["recording_row"]["ch_names"] == "O2,FP1,FZ"
    assert store.recording_meta(it.recording_id)["ch_names"] == list(order)
    row = process_batch([dataclasses.replace(it, recording_id="w-x", channels=("FP1", "T9"))], store.url,
                        store.version_id)[0]
    assert row["status"] == "quarantined" and "missing channels" in row["reason"]


def test_state_recovers_rows_from_commit_markers(src, tmp_path):
    """A run killed after committing but before writing tables loses nothing."""
    store = open_store(str(tmp_path / "store"))
    files = discover(str(src), "w")
    st = IngestState.load(store, "r1")
    diff = st.plan(files, "w")
    for b in make_batches(diff.to_ingest, 2):
        process_batch(b, store.url, store.version_id, run_id="r1")  # rows dropped: the "crash"
    assert store.read_table("recordings").empty
    st2 = IngestState.load(SignalStore.open(store.url), "r2")
    assert st2.recovered == 2
    diff2 = st2.plan(discover(str(src), "w"), "w")
    assert [f.rel_path for f in diff2.to_ingest] == ["s3/bad.edf"]  # only the never-committed file
    st2.add(process_batch([f.item for f in diff2.to_ingest], store.url, store.version_id, run_id="r2"))
    st2.finalize()
    rec = store.read_table("recordings")
    assert len(rec) == 2 and set(rec["split"]) <= {"train", "val", "test"}
    assert set(store.read_table("catalog")["status"]) == {"ingested", "quarantined"}
    assert SignalStore.open(store.url).version_meta["status"] == "complete"
    assert len(store.read_table("windows")) == 2  # 80 s and 70 s, 19 ch: one 53-s window each after the crop


def test_remote_fsspec_source_is_read_through_a_local_copy(src, tmp_path):
    import fsspec

    mem = fsspec.filesystem("memory")
    mem.pipe("/neurolm-worker-src/s1/a.edf", (src / "s1" / "a.edf").read_bytes())
    try:
        files = discover("memory://neurolm-worker-src", "m")
        assert [f.item.path for f in files] == ["memory://neurolm-worker-src/s1/a.edf"]
        store = open_store(str(tmp_path / "store"))
        row = process_batch([files[0].item], store.url, store.version_id)[0]
        assert row["status"] == "ingested" and row["catalog_row"]["size_bytes"] == (src / "s1" / "a.edf").stat().st_size
        assert store.verify_recording(row["recording_id"])
    finally:
        mem.rm("/neurolm-worker-src", recursive=True)


def test_periodic_table_writes_wait_ten_times_their_own_cost(src, tmp_path):
    """A slow table write (a large archive) spaces the next periodic one out; a forced write always happens."""
    import time

    from neurolm.ingest import FLUSH_COST_RATIO

    store = open_store(str(tmp_path / "store"))
    st = IngestState.load(store, "r1")
    diff = st.plan(discover(str(src), "w"), "w")
    rows = process_batch([f.item for f in diff.to_ingest], store.url, store.version_id, run_id="r1")
    st.add(rows[:1])
    assert st.flush(every_s=0.0)  # dirty, no interval: written
    assert st._flush_cost > 0
    assert len(store.read_table("catalog")) == 1
    st.add(rows[1:2])
    st._flush_cost = 60.0 / FLUSH_COST_RATIO  # as if the last write had taken 6 s
    st._last_flush = time.monotonic() - 30.0
    assert not st.flush(every_s=5.0)  # 30 s since, but the write's cost asks for 60
    assert len(store.read_table("catalog")) == 1
    st._last_flush = time.monotonic() - 61.0
    assert st.flush(every_s=5.0)
    assert len(store.read_table("catalog")) == 2
    st.add(rows[2:])
    st._flush_cost = 1e6
    assert st.flush(force=True)  # the end of a run (and finalize) always writes
    assert len(store.read_table("catalog")) == 3
