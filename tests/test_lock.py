"""StoreLock between real processes: contention, kill -9'd holders, stale heartbeats."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from neurolm.errors import StoreError
from storage import fs
from storage.lock import StoreLock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HOLDER = textwrap.dedent("""
    import sys, time
    from storage.lock import StoreLock
    url, ready, hold_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with StoreLock(url, "run-holder-42", heartbeat_s=0.2):
        open(ready, "w").close()
        time.sleep(hold_s)
""")


def start_holder(url, tmp_path, hold_s):
    ready = str(tmp_path / f"ready-{uuid.uuid4().hex[:6]}")
    p = subprocess.Popen([sys.executable, "-c", HOLDER, url, ready, str(hold_s)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300  # a guard against a hung holder, not a speed bound
    while not os.path.exists(ready):
        assert p.poll() is None, p.stderr.read().decode()
        if time.monotonic() > deadline:
            p.kill()
            pytest.fail("the lock holder never signalled that it holds the lock")
        time.sleep(0.02)
    return p


def test_acquire_release_and_file_content(tmp_path):
    url = str(tmp_path / "st")
    with StoreLock(url, "run-1", heartbeat_s=0.1) as lk:
        info = json.load(open(os.path.join(url, ".lock")))
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["owner"] == "run-1"
        first = info["heartbeat"]
        deadline = time.monotonic() + 60  # a loaded box may delay the thread; only "it beats" is checked
        while json.load(open(os.path.join(url, ".lock")))["heartbeat"] <= first:
            assert time.monotonic() < deadline, "the heartbeat thread never updated the lock file"
            time.sleep(0.05)
        assert lk.held
    assert not os.path.exists(os.path.join(url, ".lock"))
    with pytest.raises(RuntimeError):
        lk2 = StoreLock(url)
        lk2.acquire()
        try:
            lk2.acquire()
        finally:
            lk2.release()


def test_two_processes_contend(tmp_path):
    url = str(tmp_path / "st")
    p = start_holder(url, tmp_path, hold_s=2.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(StoreError, match=rf"store is locked by pid {p.pid} on host .* since .*run ID run-holder-42"):
            StoreLock(url, "me", timeout_s=0.5).acquire()
        assert time.monotonic() - t0 >= 0.5  # it waited the whole timeout before giving up (a lower bound)
        assert p.poll() is None  # the holder still holds it: the refusal was not a race with its exit
        # Waiting long enough gets the lock once the holder exits normally, and only then.
        with StoreLock(url, "me", timeout_s=300) as lk:
            assert lk.read_holder()["owner"] == "me"
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_killed_holder_is_detected_stale(tmp_path, caplog):
    url = str(tmp_path / "st")
    p = start_holder(url, tmp_path, hold_s=60.0)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert os.path.exists(os.path.join(url, ".lock"))  # the dead holder left its lock behind
    caplog.set_level(logging.WARNING, logger="storage.lock")
    # The heartbeat is seconds old and stale_after_s is far beyond timeout_s: acquiring at all proves the
    # lock was broken because its pid is dead, not because the heartbeat aged (no wall-clock bound needed).
    assert time.time() - json.load(open(os.path.join(url, ".lock")))["heartbeat"] < 3600
    with StoreLock(url, "after-crash", timeout_s=60, stale_after_s=3600) as lk:
        assert lk.read_holder()["owner"] == "after-crash"
    assert any("stale" in r.message and f"pid {p.pid} is dead" in r.getMessage() for r in caplog.records)


def test_old_heartbeat_on_other_host_is_stale_fresh_one_is_not(tmp_path):
    url = str(tmp_path / "st")
    os.makedirs(url)
    lock = os.path.join(url, ".lock")
    foreign = {"pid": 1, "host": "some-other-node", "owner": "run-x", "started": time.time() - 1000,
               "started_iso": "2026-01-01T00:00:00Z", "token": "t", "heartbeat": time.time()}
    json.dump(foreign, open(lock, "w"))
    with pytest.raises(StoreError, match="locked by pid 1 on host some-other-node"):
        StoreLock(url, timeout_s=0.3, stale_after_s=60).acquire()
    json.dump({**foreign, "heartbeat": time.time() - 120}, open(lock, "w"))
    with StoreLock(url, "new", timeout_s=2, stale_after_s=60) as lk:
        assert lk.read_holder()["owner"] == "new"


def test_memory_url_best_effort(tmp_path):
    url = f"memory://locktest-{uuid.uuid4().hex[:8]}"
    a = StoreLock(url, "a", heartbeat_s=0.1)
    a.acquire()
    try:
        assert fs.exists(url + "/.lock")
        with pytest.raises(StoreError, match="locked by pid"):
            StoreLock(url, "b", timeout_s=0.2).acquire()
    finally:
        a.release()
    with StoreLock(url, "b", timeout_s=1):
        pass
    assert not fs.exists(url + "/.lock")


COUNTER = textwrap.dedent("""
    import os, sys, time
    from storage.lock import StoreLock
    url, n = sys.argv[1], int(sys.argv[2])
    path = os.path.join(url, "counter")
    for _ in range(n):
        with StoreLock(url, f"worker {os.getpid()}", timeout_s=60, poll_s=0.01):
            v = int(open(path).read())  # read-modify-write that loses updates without mutual exclusion
            time.sleep(0.005)
            open(path, "w").write(str(v + 1))
""")


def test_mutual_exclusion_under_contention(tmp_path):
    url = str(tmp_path / "st")
    os.makedirs(url)
    (tmp_path / "st" / "counter").write_text("0")
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, url, "15"], cwd=ROOT, stderr=subprocess.PIPE)
             for _ in range(3)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()[-2000:]
    assert (tmp_path / "st" / "counter").read_text() == "45"
    assert not os.path.exists(os.path.join(url, ".lock"))
