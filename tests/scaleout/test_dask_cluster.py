"""Ingest and tokenize on an external Dask cluster (``dask scheduler`` + ``dask worker`` processes on loopback),
with one worker killed by SIGKILL while it runs an item: its items are redone on the other worker and the
store ends identical to a local run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from storage.signal_store import SignalStore

# the 600-s default guards against hangs; a loaded shared CI machine needs more for these end-to-end runs
pytestmark = [pytest.mark.scaleout, pytest.mark.slow, pytest.mark.timeout(1800)]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import servers  # noqa: E402


def _env(prefect_api: str) -> dict[str, str]:
    from flows.runtime import WORKER_ENV

    # the workers import this checkout (PYTHONPATH), report to the one Prefect server and stay single-threaded
    return {**os.environ, **WORKER_ENV, "PREFECT_API_URL": prefect_api, "PYTHONPATH": ROOT}


def test_worker_killed_mid_item_then_store_and_corpus_equal_a_local_run(prefect_api, corpus, local_ref, tmp_path):
    from neurolm.corpus.fixtures import save_random_tokenizer
    from neurolm.corpus.reader import TokenCorpus
    from neurolm.corpus.run import tokenize_local
    from neurolm.corpus.tokenize import prepare_job
    from distributed import Client

    ref = local_ref
    scratch = tmp_path / "dask"
    scratch.mkdir()
    env = _env(prefect_api)
    store = str(tmp_path / "store")
    with servers.dask_cluster(2, str(scratch), env) as (address, workers), Client(address, timeout=30) as client:
        pids = client.run(os.getpid)
        assert sorted(pids.values()) == sorted(w.pid for w in workers)
        proc = subprocess.Popen([sys.executable, "-m", "neurolm", "ingest", corpus.root, "--store", store,
                                 "--dataset", "synth", "--batch-size", "1", "--dask-address", address,
                                 "--no-progress"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900
        victim = None
        while victim is None:
            if proc.poll() is not None:
                pytest.fail(f"ingest ended before a worker could be killed: {proc.stdout.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, "no worker ever ran an item"
            busy = [addr for addr, n in client.run(lambda dask_worker: len(dask_worker.state.executing)).items() if n]
            if busy:
                victim = pids[busy[0]]
                os.kill(victim, signal.SIGKILL)  # mid-item: its batch must be redone on the other worker
            else:
                time.sleep(0.05)
        out = proc.communicate(timeout=600)[0].decode()
        assert proc.returncode == 0, out[-3000:]
        assert [w.pid for w in workers if w.poll() is not None] == [victim]
        got, want = SignalStore.open(store), SignalStore.open(ref)
        assert got.committed_ids() == want.committed_ids() and len(want.committed_ids()) == 4
        assert got.content_hash(tables=["recordings", "windows"]) == want.content_hash(tables=["recordings",
                                                                                                 "windows"])
        for rid in want.committed_ids():
            np.testing.assert_array_equal(got.read_signal(rid), want.read_signal(rid))

        # tokenize on the (now one-worker) cluster = a local tokenization
        tok = str(tmp_path / "tok")
        save_random_tokenizer(tok, "tiny", seed=0)
        tokenize_local(prepare_job(ref, tok, str(tmp_path / "c-local"), shard_size=2), batch_size=4)
        res = subprocess.run([sys.executable, "-m", "neurolm", "tokenize", "--store", store, "--tokenizer", tok,
                              "--out", str(tmp_path / "c-dask"), "--shard-size", "2", "--dask-address", address],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        assert res.returncode == 0, res.stdout.decode()[-3000:]
    a, b = TokenCorpus.open(str(tmp_path / "c-local")), TokenCorpus.open(str(tmp_path / "c-dask"))
    assert len(a) == len(b) > 0
    for i in range(len(a)):
        for key in ("codes", "ch", "time"):
            np.testing.assert_array_equal(a[i][key], b[i][key])
