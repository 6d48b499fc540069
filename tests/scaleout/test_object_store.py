"""The signal store, token corpora, checkpoints and the store lock on a real S3 server (moto, loopback).

Object stores have no rename: a commit marker or a version pointer is one PUT of a whole
object, written last, and the lock is a lease object created with ``If-None-Match: *``.
These tests kill writers with SIGKILL against the S3 server and check what readers see.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

from neurolm.errors import LockLostError, StoreError
from storage import fs
from storage.lock import StoreLock, machine_identity
from storage.signal_store import SCALE, SignalStore

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CFG = {"sfreq": 200.0, "l_freq": 0.1, "h_freq": 75.0}


def _s3fs():
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True)


def test_conditional_create_has_one_winner_and_lease_is_exclusive(bucket):
    url = fs.join(bucket, "race", "obj")
    assert fs.exclusive_create_is_atomic(url)
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def racer(i: int) -> None:
        barrier.wait()
        if fs.create_exclusive(url, f"racer {i}".encode()) is not None:
            wins.append(i)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and fs.read_bytes(url) == f"racer {wins[0]}".encode()

    store = fs.join(bucket, "store")
    a = StoreLock(store, "run A", heartbeat_s=3600)
    a.acquire()
    with pytest.raises(StoreError, match="run ID run A"):
        StoreLock(store, "run B", timeout_s=1.0, poll_s=0.1, heartbeat_s=3600).acquire()
    # Someone broke A's lease (its heartbeat went stale on another host) and took the store: A's
    # conditional heartbeat must not overwrite the new holder's object, and A must stop writing.
    other = {"token": "other-run", "pid": 1, "host": "elsewhere", "boot_id": "x", "pid_ns": "y",
             "owner": "run C", "heartbeat": time.time()}
    fs.atomic_write_bytes(a.lock_url, json.dumps(other).encode())
    assert a._beat_once() is False
    assert json.loads(fs.read_bytes(a.lock_url))["token"] == "other-run"
    with pytest.raises(LockLostError, match="run C"):
        a.check()
    a.release()  # leaves the other holder's lease alone
    assert json.loads(fs.read_bytes(a.lock_url))["token"] == "other-run"


def test_lease_of_a_killed_holder_on_this_machine_is_broken(bucket):
    store = fs.join(bucket, "store")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = {"token": "dead", "pid": dead.pid, **machine_identity(), "pid_started": None, "owner": "killed run",
              "heartbeat": time.time()}
    assert fs.create_exclusive(fs.join(store, ".lock"), json.dumps(holder).encode()) is not None
    with StoreLock(store, "next run", timeout_s=30, heartbeat_s=3600) as lock:
        assert json.loads(fs.read_bytes(lock.lock_url))["token"] == lock.token
    assert not fs.exists(fs.join(store, ".lock"))


# A writer that stalls right before publishing the commit marker (the worst moment to die).
WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from storage import fs
    from storage.signal_store import SignalStore
    url, rid, ready = sys.argv[1], sys.argv[2], sys.argv[3]

    class Rec:
        def __init__(self, data):
            self.data, self.ch_names, self.ch_indices = data, tuple(f"C{i}" for i in range(4)), tuple(range(4))

    real = fs.write_json_atomic
    def stall(u, obj):
        if "/commits/" in u:
            open(ready, "w").close()
            time.sleep(120)
        real(u, obj)
    fs.write_json_atomic = stall
    data = (np.random.default_rng(5).standard_normal((4, 6000)) * 0.3).astype(np.float32)
    SignalStore.open(url).write_recording(rid, Rec(data))
""")


class _Rec:
    def __init__(self, data):
        n = data.shape[0]
        self.data, self.ch_names, self.ch_indices = data, tuple(f"C{i}" for i in range(n)), tuple(range(n))


def test_writer_killed_before_its_commit_marker_is_invisible_on_s3(bucket, tmp_path):
    url = fs.join(bucket, "st")
    store = SignalStore.open(url, create=True, config=CFG)
    good = (np.random.default_rng(1).standard_normal((4, 4000)) * 0.3).astype(np.float32)
    store.write_recording("done", _Rec(good))
    ready = str(tmp_path / "ready")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url, "victim", ready], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not os.path.exists(ready):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the writer never reached its commit marker"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    objects = _s3fs().find(url.removeprefix("s3://"))
    assert any("/recordings/victim" in o and o.endswith("zarr.json") for o in objects)  # the data is there...
    reader = SignalStore.open(url)
    assert reader.committed_ids() == ["done"] and not reader.is_committed("victim")  # ...but invisible
    with pytest.raises(KeyError):
        reader.read_signal("victim")
    redo = (np.random.default_rng(5).standard_normal((4, 6000)) * 0.3).astype(np.float32)
    store.write_recording("victim", _Rec(redo))
    assert reader.committed_ids() == ["done", "victim"] and reader.verify_recording("victim")
    assert np.abs(reader.read_signal("victim") - redo).max() <= SCALE / 2 + 1e-6


def test_version_pointer_switch_is_one_put_readers_never_see_a_torn_one(bucket):
    from storage.versions import read_store_meta, write_pointer

    url = fs.join(bucket, "st")
    SignalStore.open(url, create=True, config=CFG)
    first = read_store_meta(url)
    seen: set = set()
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(read_store_meta(url)["current"])
            except BaseException as exc:  # a torn or half-written store.json would land here
                errors.append(exc)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(40):
            write_pointer(url, "v-other" if i % 2 == 0 else first["current"])
    finally:
        stop.set()
        t.join()
    assert not errors and seen <= {first["current"], "v-other"} and len(seen) == 2


def test_checkpoints_on_s3_skip_an_unfinished_save(bucket):
    from storage.checkpoints import list_checkpoints, load_latest_good, save_checkpoint

    d = fs.join(bucket, "ckpts")
    w = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    save_checkpoint(d, w, {"step": 100, "m": torch.ones(3)}, {"run": "t"})
    save_checkpoint(d, {"w": w["w"] * 2}, {"step": 200, "m": torch.zeros(3)}, {"run": "t"})
    # A save killed before its manifest (written last): its files are there, the manifest is not.
    partial = fs.join(d, "ckpt-000000300")
    fs.atomic_write_bytes(fs.join(partial, "model.safetensors"), fs.read_bytes(fs.join(d, "ckpt-000000200",
                                                                                      "model.safetensors")))
    assert [s for s, _ in list_checkpoints(d)] == [100, 200]  # no manifest: not a checkpoint
    ck = load_latest_good(d)
    assert ck is not None and ck.state["step"] == 200
    torch.testing.assert_close(ck.weights["w"], w["w"] * 2)
    torch.testing.assert_close(ck.state["m"], torch.zeros(3))
