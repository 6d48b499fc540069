"""The ingestion flow on an existing Dask cluster (``--dask-address``): a real scheduler and two real
worker processes started with the ``dask`` CLI, the way a user runs them on a shared machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from neurolm.ingest import make_params
from neurolm.synth import synth_corpus
from storage.signal_store import SignalStore

pytestmark = pytest.mark.slow
DASK = os.path.join(os.path.dirname(sys.executable), "dask")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_api():
    from flows.runtime import prefect_server

    with prefect_server() as url:
        yield url


@pytest.fixture(scope="module")
def cluster(prefect_api, tmp_path_factory):
    """Scheduler + 2 single-threaded workers; workers inherit PREFECT_API_URL (no per-worker servers)."""
    from distributed import Client

    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scratch = tmp_path_factory.mktemp("dask-scratch")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0"], env=env, cwd=scratch,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for i in range(2):
        procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--name", f"w{i}",
                                       "--local-directory", str(scratch), "--no-dashboard"],
                                      env=env, cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with Client(address, timeout=10) as client:
                    client.wait_for_workers(2, timeout=180)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_flow_runs_on_external_scheduler(cluster, tmp_path):
    from distributed import Client

    from flows.ingest import run_ingest

    corpus = synth_corpus(tmp_path / "src", n_recordings=4, minutes=0.5, n_malformed=2, seed=11,
                          formats=("edf", "bdf"))
    store_url = str(tmp_path / "store")
    params = make_params(source=corpus.root, store=store_url, dataset="ext", dask_address=cluster, batch_size=2)
    s = run_ingest(params)
    assert (s["files_seen"], s["ingested"], s["quarantined"]) == (6, 4, 2)
    store = SignalStore.open(store_url)
    assert len(store.committed_ids()) == 4
    assert all(store.verify_recording(r) for r in store.committed_ids())
    # the three batches really ran on the external workers (the flow process has no local cluster)
    with Client(cluster) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and sum(executed.values()) >= 3, executed
