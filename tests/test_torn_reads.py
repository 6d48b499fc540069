"""Readers see the old or the new recording, never a half-written one (issue 11 item 4).

Re-ingesting a changed file used to rewrite its array in place, so a reader without
the lock (tokenization, training) got an all-zero signal or a KeyError. Every write
now goes to a new array generation and the commit marker switches atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from storage.signal_store import GENERATION_GRACE_S, SCALE, SignalStore

CFG = {"sfreq": 200.0, "l_freq": 0.1, "h_freq": 75.0}


class Rec:
    def __init__(self, seed, n_ch, seconds):
        self.data = (np.random.default_rng(seed).standard_normal((n_ch, int(seconds * 200))) * 0.3).astype(np.float32)
        self.ch_names, self.ch_indices = tuple(f"C{i}" for i in range(n_ch)), tuple(range(n_ch))


def arrays(store):
    return fs_list(os.path.join(store.version_url, "signals.zarr", "recordings"))


def fs_list(path):
    return sorted(n for n in os.listdir(path) if n != "zarr.json") if os.path.isdir(path) else []


class LoopReader(threading.Thread):
    """Reads one recording in a loop (a fresh store object each time, like separate readers, or one cached
    object, like a training process) and records every distinct result or error."""

    def __init__(self, url, rid, fresh):
        super().__init__(daemon=True)
        self.url, self.rid, self.fresh = url, rid, fresh
        self.stop, self.reads, self.errors, self.results = threading.Event(), 0, [], []

    def run(self):
        store = SignalStore.open(self.url)
        while not self.stop.is_set():
            try:
                s = SignalStore.open(self.url) if self.fresh else store
                x = s.read_signal(self.rid)
                if not any(np.array_equal(x, r) for r in self.results):
                    self.results.append(x)
                self.reads += 1
            except Exception as exc:  # noqa: BLE001 - every error is a failure of the contract
                self.errors.append(repr(exc))
                self.reads += 1


def test_concurrent_readers_see_old_or_new_never_torn(tmp_path):
    url = str(tmp_path / "st")
    store = SignalStore.open(url, create=True, config=CFG)
    old, new = Rec(1, 6, 60.0), Rec(2, 6, 90.0)  # different content and length
    store.write_recording("r", new)
    new_ref = store.read_signal("r")
    store.write_recording("r", old)
    old_ref = store.read_signal("r")
    for ref, rec in ((old_ref, old), (new_ref, new)):  # what was written, within one quantization step
        assert ref.shape == rec.data.shape and np.abs(ref - rec.data).max() <= SCALE / 2 + 1e-6
    readers = [LoopReader(url, "r", fresh=True), LoopReader(url, "r", fresh=False)]
    for r in readers:
        r.start()
    try:
        for i in range(12):  # re-ingest with alternating content while they read
            store.write_recording("r", new if i % 2 == 0 else old)
            while min(r.reads for r in readers) < 2 * (i + 1):  # every reader overlaps the writes
                time.sleep(0.005)
    finally:
        for r in readers:
            r.stop.set()
        for r in readers:
            r.join(timeout=120)
    for r in readers:
        assert r.errors == [], r.errors[:3]
        assert r.results and all(np.array_equal(x, old_ref) or np.array_equal(x, new_ref) for x in r.results)
    assert any(np.array_equal(x, new_ref) for x in readers[0].results)  # the fresh reader did see the switch


def test_collected_generation_is_reresolved_through_the_marker_not_zeros(tmp_path):
    url = str(tmp_path / "st")
    writer = SignalStore.open(url, create=True, config=CFG)
    writer.write_recording("r", Rec(1, 32, 50.0))
    reader = SignalStore.open(url)
    first = reader.read_signal("r")  # the reader now caches the marker and the array of generation 1
    writer.write_recording("r", Rec(2, 32, 60.0))
    assert np.array_equal(reader.read_signal("r"), first)  # the old generation is still there: old signal
    assert len(arrays(writer)) == 2 and writer.collect_garbage() == []  # within the grace period: kept
    removed = writer.collect_garbage(grace_s=0.0)
    assert len(removed) == 1 and arrays(writer) == [writer.recording_meta("r")["array"]]
    after = reader.read_signal("r")  # its array is gone: resolved again, the new signal, not zeros
    assert np.array_equal(after, SignalStore.open(url).read_signal("r")) and after.shape == (32, 12000)
    assert reader.read_sample("r", 0).shape[1] == reader.sample_length("r") and reader.verify_recording("r")
    writer.delete_recording("r")
    with pytest.raises(KeyError):
        reader.read_signal("r")  # deleted under a reader: an error, never zeros
    assert arrays(writer) == []


def test_unmarked_arrays_go_after_the_grace_period_only(tmp_path):
    url = str(tmp_path / "st")
    store = SignalStore.open(url, create=True, config=CFG)
    store.write_recording("keep", Rec(1, 2, 20.0))
    store.write_recording("partial", Rec(2, 2, 20.0))
    os.unlink(os.path.join(store.version_url, "commits", "partial.json"))  # as if killed before its commit
    assert store.collect_garbage(grace_s=60.0) == []  # young: may be a write in progress
    (name,) = [n for n in arrays(store) if n.startswith("partial@")]
    old = time.time() - 120
    for dirpath, _dirs, files in os.walk(os.path.join(store.version_url, "signals.zarr", "recordings", name)):
        for f in files:
            os.utime(os.path.join(dirpath, f), (old, old))
    assert store.collect_garbage(grace_s=60.0) == [name]
    assert [n.split("@")[0] for n in arrays(store)] == ["keep"] and store.verify_recording("keep")


def test_marker_without_generation_reads_the_old_path_and_is_replaced_cleanly(tmp_path):
    url = str(tmp_path / "st")
    store = SignalStore.open(url, create=True, config=CFG)
    rec = Rec(3, 3, 20.0)
    store.write_recording("legacy", rec)
    # The layout of stores written before generations: recordings/<rid>, a marker without "array".
    base = os.path.join(store.version_url, "signals.zarr", "recordings")
    marker_path = os.path.join(store.version_url, "commits", "legacy.json")
    marker = json.load(open(marker_path))
    os.rename(os.path.join(base, marker.pop("array")), os.path.join(base, "legacy"))
    json.dump(marker, open(marker_path, "w"))
    old = SignalStore.open(url)
    assert np.abs(old.read_signal("legacy") - rec.data).max() <= SCALE / 2 + 1e-6 and old.verify_recording("legacy")
    store = SignalStore.open(url)
    store.write_recording("legacy", Rec(4, 3, 25.0))
    assert sorted(n.split("@")[0] for n in arrays(store)) == ["legacy", "legacy"]  # the old array stays for now
    assert np.abs(old.read_signal("legacy") - rec.data).max() <= SCALE / 2 + 1e-6  # a reader of it is unharmed
    assert store.collect_garbage(grace_s=0.0) == ["legacy"]
    assert SignalStore.open(url).read_signal("legacy").shape == (3, 5000)


def test_reingest_of_a_changed_file_under_a_concurrent_reader(tmp_path):
    from neurolm.ingest import make_params
    from neurolm.ingest.run import ingest
    from neurolm.synth import synth_corpus

    corpus = synth_corpus(tmp_path / "src", n_recordings=2, formats=("edf",), minutes=1.0, n_malformed=0, seed=7)
    url = str(tmp_path / "store")
    params = make_params(source=corpus.root, store=url, dataset="synth", batch_size=1)
    ingest(params)
    target = str(Path(corpus.root) / corpus.good[0].path)
    store = SignalStore.open(url)
    rec = store.read_table("recordings").set_index("source_path")
    rid = rec.loc[target, "recording_id"]
    old_ref = store.read_signal(rid)
    shutil.copyfile(Path(corpus.root) / corpus.good[1].path, target)  # the file changes: other content
    readers = [LoopReader(url, rid, fresh=True), LoopReader(url, rid, fresh=False)]
    for r in readers:
        r.start()
    try:
        while min(r.reads for r in readers) < 3:
            time.sleep(0.01)
        summary = ingest(params)
        n = min(r.reads for r in readers)
        while min(r.reads for r in readers) < n + 3:  # they go on reading after the switch
            time.sleep(0.01)
    finally:
        for r in readers:
            r.stop.set()
        for r in readers:
            r.join(timeout=120)
    assert summary["ingested"] == 1
    store = SignalStore.open(url)
    assert len([n for n in arrays(store) if n.startswith(rid + "@")]) == 2  # the old one stays for its readers
    new_ref = store.read_signal(rid)
    assert not np.array_equal(new_ref, old_ref)
    for r in readers:
        assert r.errors == [], r.errors[:3]
        assert all(np.array_equal(x, old_ref) or np.array_equal(x, new_ref) for x in r.results)
    assert any(np.array_equal(x, new_ref) for x in readers[0].results)
    # The next run collects the superseded generation once its replacement is older than the grace period.
    marker = os.path.join(store.version_url, "commits", f"{rid}.json")
    past = time.time() - GENERATION_GRACE_S - 60
    os.utime(marker, (past, past))
    ingest(params)
    assert [n for n in arrays(store) if n.startswith(rid + "@")] == [store.recording_meta(rid)["array"]]
    assert np.array_equal(SignalStore.open(url).read_signal(rid), new_ref)
