"""The store lock is never broken while its holder lives, and a holder that lost it stops writing.

Issue 11 item 2: a stopped holder (Ctrl-Z) lost its lock to a second run after 120 s,
a lock from another PID namespace on the same hostname was broken as "pid dead",
and the holder then went on writing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from neurolm.errors import LockLostError, StoreError
from storage.lock import StoreLock, machine_identity
from storage.signal_store import SignalStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = {"sfreq": 200.0, "l_freq": 0.1, "h_freq": 75.0}

HOLDER = textwrap.dedent("""
    import sys, time
    from storage.lock import StoreLock
    url, ready, hold_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with StoreLock(url, "run-stopped", heartbeat_s=0.1) as lk:
        open(ready, "w").close()
        time.sleep(hold_s)
        lk.check()  # exits non-zero (LockLostError) if the lock was taken while stopped
""")


def lock_file(url):
    return os.path.join(url, ".lock")


def heartbeat(url):
    return json.load(open(lock_file(url)))["heartbeat"]


def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stopped_holder_older_than_stale_threshold_is_not_broken(tmp_path):
    url = str(tmp_path / "st")
    ready = str(tmp_path / "ready")
    p = subprocess.Popen([sys.executable, "-c", HOLDER, url, ready, "1.0"], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while not os.path.exists(ready):
            assert p.poll() is None, p.stderr.read().decode()
            time.sleep(0.02)
        p.send_signal(signal.SIGSTOP)  # Ctrl-Z
        time.sleep(0.3)  # a heartbeat write in flight when it stopped has landed
        stale_after = 1.0
        while time.time() - heartbeat(url) <= stale_after:  # the stopped holder's heartbeat goes stale
            time.sleep(0.1)
        with pytest.raises(StoreError, match=rf"locked by pid {p.pid} .*run-stopped"):
            StoreLock(url, "second run", timeout_s=0.5, stale_after_s=stale_after).acquire()
        assert json.load(open(lock_file(url)))["owner"] == "run-stopped"
    finally:
        p.send_signal(signal.SIGCONT)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]  # it still held the lock at its end
    assert not os.path.exists(lock_file(url))


def _foreign_lock(url, **over):
    os.makedirs(url, exist_ok=True)
    me = machine_identity()
    info = {"token": "their-token", "pid": dead_pid(), "host": me["host"], "boot_id": me["boot_id"],
            "pid_ns": "pid:[1]", "pid_started": None, "owner": "run-in-a-container", "started": time.time() - 5,
            "started_iso": "2026-12-06T20:00:00Z", "heartbeat": time.time(), **over}
    with open(lock_file(url), "w") as f:
        json.dump(info, f)
    return info


def test_lock_from_another_pid_namespace_is_not_broken_as_dead(tmp_path, caplog):
    if machine_identity()["pid_ns"] is None:
        pytest.skip("no PID namespaces on this OS")
    url = str(tmp_path / "st")
    info = _foreign_lock(url)  # same hostname and boot, another PID namespace: its pid means nothing here
    with pytest.raises(StoreError, match=rf"locked by pid {info['pid']} on host .*another host or PID namespace"):
        StoreLock(url, "me", timeout_s=0.5, stale_after_s=60).acquire()
    assert json.load(open(lock_file(url)))["token"] == "their-token"
    # Only a heartbeat stale for long breaks it, and the log says why.
    _foreign_lock(url, heartbeat=time.time() - 120)
    caplog.set_level(logging.WARNING, logger="storage.lock")
    with StoreLock(url, "me", timeout_s=5, stale_after_s=60) as lk:
        assert lk.read_holder()["owner"] == "me"
    msg = " ".join(r.getMessage() for r in caplog.records)
    assert "another PID namespace" in msg and "heartbeat" in msg and "dead on this host" not in msg


def test_lock_file_names_the_machine(tmp_path):
    url = str(tmp_path / "st")
    with StoreLock(url, "me"):
        info = json.load(open(lock_file(url)))
    me = machine_identity()
    assert (info["host"], info["boot_id"], info["pid_ns"]) == (me["host"], me["boot_id"], me["pid_ns"])
    if os.path.exists("/proc/sys/kernel/random/boot_id"):
        assert info["boot_id"] == open("/proc/sys/kernel/random/boot_id").read().strip()
        assert info["pid_ns"] == os.readlink("/proc/self/ns/pid")


def test_waiting_is_said_once_with_whom(tmp_path):
    url = str(tmp_path / "st")
    said = []
    with StoreLock(url, "first run", heartbeat_s=0.05):
        with pytest.raises(StoreError):
            StoreLock(url, "second", timeout_s=0.6, poll_s=0.02, on_wait=said.append).acquire()
    assert len(said) == 1, said
    assert all(s in said[0] for s in ("first run", f"pid {os.getpid()}", machine_identity()["host"], "since"))


class Rec:
    def __init__(self, seed):
        self.data = np.random.default_rng(seed).standard_normal((2, 4000)).astype(np.float32) * 0.3
        self.ch_names, self.ch_indices = ("C0", "C1"), (0, 1)


def _take_over(url):
    """What a second run does to a lock it judged stale: remove it, then take it."""
    os.unlink(lock_file(url))
    other = StoreLock(url, "second run", heartbeat_s=0.05)
    other.acquire()
    return other


def test_holder_whose_lock_was_taken_gets_lock_lost_error_at_next_write(tmp_path):
    url = str(tmp_path / "st")
    SignalStore.open(url, create=True, config=CFG)
    mine = StoreLock(url, "first run", heartbeat_s=0.05)
    mine.acquire()
    store = SignalStore.open(url).bind_lock(mine)
    worker = SignalStore.open(url).bind_lock(mine.token)  # a worker process knows only the token
    store.write_recording("r1", Rec(1))
    worker.write_recording("r2", Rec(2))
    table = pd.DataFrame({"recording_id": ["r1"], "start": [0], "length": [2000], "split": ["train"]})
    store.write_table("windows", table)
    other = _take_over(url)
    try:
        with pytest.raises(LockLostError, match="second run"):
            mine.check()
        with pytest.raises(LockLostError):
            store.write_table("windows", pd.concat([table] * 2))
        with pytest.raises(LockLostError):
            store.write_recording("r3", Rec(3))
        with pytest.raises(LockLostError, match="second run"):
            worker.write_recording("r4", Rec(4))
        with pytest.raises(LockLostError):
            store.set_status("complete")
        time.sleep(0.5)  # several heartbeats of the old holder: none may touch the new holder's file
        assert json.load(open(lock_file(url)))["token"] == other.token
        mine.release()  # leaves the new holder's lock alone
        assert json.load(open(lock_file(url)))["token"] == other.token
        fresh = SignalStore.open(url)  # committed data is intact, nothing half-written shows
        assert sorted(fresh.committed_ids()) == ["r1", "r2"] and len(fresh.read_table("windows")) == 1
        assert fresh.verify_recording("r1") and fresh.verify_recording("r2")
    finally:
        other.release()
    assert not os.path.exists(lock_file(url))


def test_ingest_run_whose_lock_is_taken_stops_failed_and_keeps_committed_data(tmp_path):
    from neurolm.fanout import local_map
    from neurolm.ingest import make_params
    from neurolm.ingest.run import ingest
    from neurolm.synth import synth_corpus

    corpus = synth_corpus(tmp_path / "src", n_recordings=6, minutes=1.0, n_malformed=0, seed=5)
    store_url = str(tmp_path / "store")
    params = make_params(source=corpus.root, store=store_url, dataset="synth", batch_size=2)
    thief: list[StoreLock] = []

    def stealing_map(fn, items, on_outcome, labels=None):
        def hook(out):
            on_outcome(out)
            if not thief:  # after the first batch, another run takes the store
                thief.append(_take_over(store_url))
        local_map(fn, items, hook, labels)

    with pytest.raises(LockLostError):
        ingest(params, stealing_map, run_id=f"victim-{uuid.uuid4().hex[:6]}")
    first = SignalStore.open(store_url)
    kept = sorted(first.committed_ids())
    assert len(kept) == 2 and all(first.verify_recording(r) for r in kept)  # batch 1 only; nothing after the loss
    assert json.load(open(lock_file(store_url)))["token"] == thief[0].token
    thief[0].release()
    lines = []
    summary = ingest(params, log=lines.append)
    store = SignalStore.open(store_url)
    assert len(store.committed_ids()) == 6 and len(store.read_table("recordings")) == 6
    assert summary["ingested"] == 4 and any("restored 2" in ln for ln in lines), lines
