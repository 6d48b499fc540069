"""Commit protocol under real failures: killed writers, partial data, concurrent processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import zarr

from neurolm.errors import StoreError
from storage import fs
from storage.signal_store import SCALE, SignalStore

CFG = {"sfreq": 200.0, "l_freq": 0.1, "h_freq": 75.0}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A writer process. With HOLD=marker it stops (sleeps) right before publishing the
# commit marker, so the test can kill -9 it at the exact worst moment.
WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from dataclasses import dataclass
    from storage import fs
    from storage.signal_store import SignalStore
    url, ids, ready, hold = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
    n_ch, seconds = int(sys.argv[5]), float(sys.argv[6])

    @dataclass(frozen=True)
    class Rec:
        data: np.ndarray; ch_names: tuple; ch_indices: tuple; orig_sfreq: float = 256.0

    if hold == "marker":
        real = fs.write_json_atomic
        def stall(u, obj):
            if "/commits/" in u.replace(os.sep, "/"):
                open(ready, "w").close()
                time.sleep(120)
            real(u, obj)
        fs.write_json_atomic = stall
    s = SignalStore.open(url)
    for rid in ids:
        seed = sum(map(ord, rid))
        data = (np.random.default_rng(seed).standard_normal((n_ch, int(seconds * 200))) * 0.3).astype(np.float32)
        s.write_recording(rid, Rec(data, tuple(f"C{i}" for i in range(n_ch)), tuple(range(n_ch))))
    if hold != "marker":
        open(ready, "w").close()
""")


def expected(rid: str, n_ch: int, seconds: float) -> np.ndarray:
    seed = sum(map(ord, rid))
    return (np.random.default_rng(seed).standard_normal((n_ch, int(seconds * 200))) * 0.3).astype(np.float32)


def spawn(url, ids, ready, hold, n_ch=8, seconds=60.0):
    return subprocess.Popen([sys.executable, "-c", WRITER, url, ",".join(ids), ready, hold, str(n_ch), str(seconds)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(path_or_fn, proc, timeout=30.0):
    t0 = time.time()
    check = path_or_fn if callable(path_or_fn) else (lambda: os.path.exists(path_or_fn))
    while not check():
        if proc.poll() is not None:
            raise AssertionError(f"writer exited early: {proc.stderr.read().decode()[-2000:]}")
        if time.time() - t0 > timeout:
            raise AssertionError("timed out waiting for the writer")
        time.sleep(0.02)


def array_dirs(store, rid):
    """The array directories written for ``rid`` (one per write generation)."""
    base = os.path.join(store.version_url, "signals.zarr", "recordings")
    return sorted(os.path.join(base, n) for n in (os.listdir(base) if os.path.isdir(base) else [])
                  if n == rid or n.startswith(rid + "@"))


class Rec:
    def __init__(self, data, n_ch):
        self.data, self.ch_names, self.ch_indices = data, tuple(f"C{i}" for i in range(n_ch)), tuple(range(n_ch))


def test_killed_before_marker_is_invisible_and_redone(tmp_path):
    url = str(tmp_path / "st")
    store = SignalStore.open(url, create=True, config=CFG)
    store.write_recording("done", Rec(expected("done", 8, 60.0), 8))
    ready = str(tmp_path / "ready")
    proc = spawn(url, ["victim"], ready, "marker")
    wait_for(ready, proc)  # all data written, marker about to be published
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (arr_dir,) = array_dirs(store, "victim")
    assert os.path.exists(os.path.join(arr_dir, "zarr.json"))  # the data is there...
    reader = SignalStore.open(url)
    assert reader.committed_ids() == ["done"] and not reader.is_committed("victim")  # ...but invisible
    with pytest.raises(KeyError):
        reader.read_signal("victim")
    # The next run redoes it.
    store.write_recording("victim", Rec(expected("victim", 8, 60.0), 8))
    assert reader.committed_ids() == ["done", "victim"] and reader.verify_recording("victim")
    assert np.abs(reader.read_signal("victim") - expected("victim", 8, 60.0)).max() <= SCALE / 2 + 1e-6


def test_killed_mid_data_write_then_overwritten(tmp_path):
    url = str(tmp_path / "st")
    store = SignalStore.open(url, create=True, config=CFG)
    ready = str(tmp_path / "ready")
    # Big enough (32 ch × 40 min, 75 chunks) that the kill lands while chunks are being written.
    proc = spawn(url, ["big"], ready, "marker", n_ch=32, seconds=2400.0)
    wait_for(lambda: any(files for d in array_dirs(store, "big") for _, _, files in os.walk(os.path.join(d, "c"))),
             proc, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not store.is_committed("big") and store.committed_ids() == []
    # Partial data of a longer recording is replaced, not merged, by a shorter rewrite.
    short = expected("big", 4, 30.0)
    store.write_recording("big", Rec(short, 4))
    assert store.read_signal("big").shape == (4, 6000) and store.verify_recording("big")


def test_unmarked_data_is_ignored_and_replaced(tmp_path):
    url = str(tmp_path / "st")
    store = SignalStore.open(url, create=True, config=CFG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        junk = zarr.create_array(fs.zarr_store(os.path.join(store.version_url, "signals.zarr")), name="recordings/r1",
                                 shape=(3, 5000), dtype="int16", chunks=(3, 1000))
        junk[:] = 7
    assert store.committed_ids() == [] and not store.is_committed("r1")
    good = expected("r1", 2, 20.0)
    store.write_recording("r1", Rec(good, 2))
    out = store.read_signal("r1")
    assert out.shape == (2, 4000) and np.abs(out - good).max() <= SCALE / 2 + 1e-6
    # Corrupting committed data is detected by verification.
    name = store.recording_meta("r1")["array"]
    arr = zarr.open_array(fs.zarr_store(os.path.join(store.version_url, "signals.zarr")), path=f"recordings/{name}")
    arr[0, 0] = arr[0, 0] + 1
    fresh = SignalStore.open(url)
    assert not fresh.verify_recording("r1")
    with pytest.raises(StoreError, match="checksum mismatch"):
        fresh.content_hash(verify=True)


def test_concurrent_processes_write_different_recordings(tmp_path):
    url = str(tmp_path / "st")
    SignalStore.open(url, create=True, config=CFG)
    ids_a, ids_b = ["a1", "a2", "a3"], ["b1", "b2", "b3"]
    procs = [spawn(url, ids, str(tmp_path / f"ready{i}"), "none", n_ch=6, seconds=120.0)
             for i, ids in enumerate((ids_a, ids_b))]
    for p in procs:
        assert p.wait(timeout=60) == 0, p.stderr.read().decode()[-2000:]
    store = SignalStore.open(url)
    assert store.committed_ids() == sorted(ids_a + ids_b)
    for rid in ids_a + ids_b:
        assert store.verify_recording(rid)
        assert np.abs(store.read_signal(rid) - expected(rid, 6, 120.0)).max() <= SCALE / 2 + 1e-6
