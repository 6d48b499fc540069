"""One item's write overlapping the next item's read (``Staged`` in ``map_bounded``), and who gets blamed.

Each batch runs in a forked child; with a :class:`Staged` function the child runs item k's
``finish`` on a writer thread while item k+1's ``prepare`` runs. These tests use the real fork,
pipes and signals: a crash or a time limit must still fall on the item that caused it.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from neurolm import quality
from neurolm.errors import BadInputError
from neurolm.ingest import discover, open_store, process_batch
from neurolm.ingest.limits import FileLimits, Staged, map_bounded
from neurolm.readers import _check_finite
from neurolm.synth import synth_signal, write_recording
from storage.signal_store import SignalStore

LIMITS = FileLimits(timeout_s=30.0, memory_bytes=512 * 2**20)


def _over(item, reason):
    return {"item": item, "limited": reason}


def _read(item):
    if item == "crash-read":
        os.kill(os.getpid(), signal.SIGSEGV)
    if item == "hang-read":
        time.sleep(60)
    t0 = time.time()
    time.sleep(0.2)
    return {"item": item, "read": [t0, time.time()]}


def _prepare(token):
    token = token if isinstance(token, dict) else _read(token)  # two stages: prepare reads too
    t0 = time.time()
    time.sleep(0.3)
    return {**token, "prepare": [t0, time.time()]}


def _finish(token):
    if token["item"] == "crash-write":
        os.kill(os.getpid(), signal.SIGSEGV)
    t0 = time.time()
    time.sleep(0.3)
    return {**token, "finish": [t0, time.time()], "pid": os.getpid()}


def _overlaps(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


STAGES = [Staged(_prepare, _finish, read=_read), Staged(_prepare, _finish)]


def test_the_next_items_read_and_the_last_items_write_run_while_one_item_is_prepared():
    items = ["a", "b", "c", "d"]
    t0 = time.perf_counter()
    out = map_bounded(STAGES[0], items, LIMITS, _over)
    wall = time.perf_counter() - t0
    assert [o["item"] for o in out] == items
    assert len({o["pid"] for o in out}) == 1 and out[0]["pid"] != os.getpid()  # one forked child
    for k in range(1, 3):  # while k is prepared, k+1 is read and k-1 written
        assert _overlaps(out[k]["prepare"], out[k + 1]["read"]), (out[k], out[k + 1])
        assert _overlaps(out[k]["prepare"], out[k - 1]["finish"]), (out[k], out[k - 1])
    assert wall < 4 * 0.8 - 0.5  # one item at a time: 4 x (0.2 + 0.3 + 0.3) s; overlapped: ~0.2 + 4 x 0.3 + 0.3


def test_one_items_finish_runs_while_the_next_item_is_prepared():
    items = ["a", "b", "c"]
    out = map_bounded(STAGES[1], items, LIMITS, _over)
    assert [o["item"] for o in out] == items
    for k in range(2):  # finish(k) and prepare(k+1) overlap in time
        assert _overlaps(out[k]["finish"], out[k + 1]["prepare"]), (out[k], out[k + 1])


def test_without_overlap_the_stages_run_one_item_at_a_time():
    limits = FileLimits(timeout_s=30.0, memory_bytes=512 * 2**20, overlap=False)
    out = map_bounded(STAGES[0], ["a", "b", "c"], limits, _over)
    assert [o["item"] for o in out] == ["a", "b", "c"]
    for k in range(2):  # item k is written before item k+1 is read
        assert out[k]["finish"][1] <= out[k + 1]["read"][0], (out[k], out[k + 1])


@pytest.mark.parametrize("staged", STAGES, ids=["3-stage", "2-stage"])
def test_a_reader_crash_is_blamed_on_the_file_being_read_not_on_the_one_being_written(staged):
    items = ["a", "crash-read", "c"]
    out = map_bounded(staged, items, LIMITS, _over)
    assert out[0]["item"] == "a" and "finish" in out[0]  # its write was cut short by the crash: redone
    assert out[1] == {"item": "crash-read", "limited": out[1]["limited"]}
    assert "the reader crashed (SIGSEGV)" in out[1]["limited"]
    assert "finish" in out[2]


@pytest.mark.parametrize("staged", STAGES, ids=["3-stage", "2-stage"])
def test_a_crash_while_writing_is_blamed_on_the_file_being_written(staged):
    items = ["crash-write", "b", "c"]
    out = map_bounded(staged, items, LIMITS, _over)
    assert "limited" in out[0] and out[0]["item"] == "crash-write"
    assert "finish" in out[1] and "finish" in out[2]  # not blamed for what the write did meanwhile


@pytest.mark.parametrize("staged", STAGES, ids=["3-stage", "2-stage"])
def test_the_time_limit_falls_on_the_file_that_went_over_it(staged):
    limits = FileLimits(timeout_s=2.0, memory_bytes=512 * 2**20)
    items = ["a", "hang-read", "c"]
    out = map_bounded(staged, items, limits, _over)
    assert "finish" in out[0] and "finish" in out[2]
    assert "longer than the per-file time limit of 2 s" in out[1]["limited"]


def test_overlapped_batch_writes_the_same_store_as_one_file_at_a_time(tmp_path):
    labels = tuple(f"EEG {n}-REF" for n in ("FP1", "FP2", "C3", "C4", "O1", "O2"))
    for i in range(3):
        path = tmp_path / "src" / f"s{i}" / f"s{i}_t0.edf"
        path.parent.mkdir(parents=True)
        write_recording(path, "edf", synth_signal(len(labels), 256.0, 90, seed=i, ch_names=labels), 256.0, labels)
    items = [f.item for f in discover(str(tmp_path / "src"), "ds")]
    hashes, statuses = [], []
    for name, limits in (("overlapped", LIMITS), ("in-process", FileLimits(isolate=False))):
        store = open_store(str(tmp_path / name))
        rows = process_batch(items, store.url, store.version_id, run_id="r", limits=limits)
        statuses.append([r["status"] for r in rows])
        assert [r["recording_id"] for r in rows] == [it.recording_id for it in items]
        hashes.append(SignalStore.open(store.url).content_hash(tables=()))
    assert statuses == [["ingested"] * 3] * 2
    assert hashes[0] == hashes[1]


def test_the_cheap_checks_agree_with_the_plain_rules(monkeypatch):
    """Column-blocked extreme count and the one-sum finiteness test give the plain rules' answers."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 10_001)).astype(np.float32)
    x[1, :300] = 9.0  # 3 % over +t
    x[2, :50] = -9.0  # 0.5 %: not extreme
    x[3, ::40] = np.nan
    x[4, :200] = -9.0
    x[4, 200:] = 9.0  # all beyond ±t
    plain = (np.count_nonzero(x > 8.0, axis=1) + np.count_nonzero(x < -8.0, axis=1)) > 0.01 * x.shape[1]
    monkeypatch.setattr(quality, "_CACHE_VALUES", 64)  # many column blocks, the last one short
    assert quality.extreme_channels(x, 100.0, 800.0).tolist() == plain.tolist() == [False, True, False, False, True]

    big = np.full((2, 1000), 3e38, np.float32)  # finite, but its float32 sum overflows: not refused
    _check_finite(big, ("A", "B"))
    both = np.zeros((2, 1000), np.float32)
    both[0, 0], both[0, 1] = np.inf, -np.inf  # sums to NaN: still found, 0.1 % of samples: kept
    _check_finite(both, ("A", "B"))
    both[1] = np.nan
    with pytest.raises(BadInputError, match="channel 'B' is entirely NaN"):
        _check_finite(both, ("A", "B"))


def test_overlap_is_on_only_where_each_local_worker_has_a_second_core(monkeypatch, tmp_path):
    import neurolm.ingest.config as C

    def params(**kw):
        return C.IngestParams(source=str(tmp_path / "src"), store=str(tmp_path / "store"), **kw)

    monkeypatch.setattr(C, "available_cpus", lambda: 4)
    assert params(workers=2).file_limits().overlap and params(workers=1).overlap_writes()
    assert not params(workers=3).file_limits().overlap  # 3 workers on 4 cores: the threads would compete
    assert not params(workers=1, dask_address="tcp://10.0.0.5:8786").overlap_writes()  # a cluster fills its cores
    assert params(workers=3, overlap="on").file_limits().overlap
    assert not params(workers=1, overlap="off").file_limits().overlap


def test_a_file_quarantined_after_its_read_always_carries_its_hash(tmp_path):
    """The hash runs beside the read: the quarantine row must not depend on which finished first."""
    labels = ("EEG FP1-REF", "EEG C3-REF")
    path = tmp_path / "src" / "s0" / "short.edf"
    path.parent.mkdir(parents=True)
    write_recording(path, "edf", synth_signal(2, 256.0, 4, seed=0, ch_names=labels), 256.0, labels)  # too short
    items = [f.item for f in discover(str(tmp_path / "src"), "ds")]
    for name, limits in (("forked", LIMITS), ("in-process", FileLimits(isolate=False))):
        store = open_store(str(tmp_path / name))
        (row,) = process_batch(items, store.url, store.version_id, run_id="r", limits=limits)
        assert row["status"] == "quarantined" and "too short" in row["reason"]
        assert row["catalog_row"]["content_hash"].startswith("sha256:"), row["catalog_row"]
