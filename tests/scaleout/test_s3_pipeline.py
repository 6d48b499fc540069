"""`neurolm ingest` and `neurolm tokenize` with the store, tokenizer and corpus on S3 (moto on loopback).

The CLI is killed with SIGKILL mid-ingest (twice nothing special: a real kill -9 of the
process group), rerun, and the S3 store must equal an uninterrupted local ingest of the
same files; the token corpus written to S3 must equal one tokenized locally.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from storage import fs
from storage.signal_store import SignalStore

# the 600-s default guards against hangs; a loaded shared CI machine needs more for these end-to-end runs
pytestmark = [pytest.mark.scaleout, pytest.mark.slow, pytest.mark.timeout(1800)]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(prefect_api):
    return {**os.environ, "PREFECT_API_URL": prefect_api, "PYTHONPATH": ROOT}


def _ingest(source, store, prefect_api):
    return subprocess.Popen(
        [sys.executable, "-m", "neurolm", "ingest", source, "--store", store, "--dataset", "synth",
         "--workers", "1", "--batch-size", "1", "--no-progress"],
        cwd=ROOT, env=_env(prefect_api), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _markers(store: str) -> list[str]:
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False).glob(
        store.removeprefix("s3://") + "/versions/*/commits/*.json")


def _catalog(store):
    df = SignalStore.open(store).read_table("catalog").drop(columns=["run_id"])
    return df.sort_values("recording_id").reset_index(drop=True)


def test_ingest_killed_on_s3_resumes_to_the_uninterrupted_store_then_tokenizes(corpus, local_ref, prefect_api,
                                                                             bucket, tmp_path):
    from neurolm.corpus.fixtures import save_random_tokenizer
    from neurolm.corpus.reader import TokenCorpus
    from neurolm.corpus.run import tokenize_local
    from neurolm.corpus.tokenize import prepare_job

    store = fs.join(bucket, "store")
    proc = _ingest(corpus.root, store, prefect_api)
    deadline = time.monotonic() + 900
    while not _markers(store):
        if proc.poll() is not None:
            pytest.fail(f"ingest exited before the kill: {proc.stdout.read().decode()[-3000:]}")
        assert time.monotonic() < deadline, "no commit marker appeared on S3"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_killed = len(_markers(store))
    assert 1 <= n_killed < 4, n_killed
    assert fs.exists(fs.join(store, ".lock"))  # the killed run's lease is left behind...
    proc = _ingest(corpus.root, store, prefect_api)
    out = proc.communicate(timeout=400)[0].decode()
    assert proc.returncode == 0, out[-3000:]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert secret not in out and os.environ["AWS_ACCESS_KEY_ID"] not in out  # credentials never printed
    assert not fs.exists(fs.join(store, ".lock"))  # ...broken by the rerun (dead pid on this machine), then released
    got, ref = SignalStore.open(store), SignalStore.open(local_ref)
    assert len(got.committed_ids()) == 4 and got.committed_ids() == ref.committed_ids()
    assert got.content_hash(tables=["recordings", "windows"]) == ref.content_hash(tables=["recordings", "windows"])
    assert _catalog(store).equals(_catalog(local_ref))
    for rid in ref.committed_ids():
        assert got.verify_recording(rid)
        np.testing.assert_array_equal(got.read_signal(rid), ref.read_signal(rid))

    # tokenize: tokenizer and corpus on S3 too, against a local tokenization of the local store
    tok_local, tok_s3 = str(tmp_path / "tok"), fs.join(bucket, "tok")
    save_random_tokenizer(tok_local, "tiny", seed=0)
    save_random_tokenizer(tok_s3, "tiny", seed=0)
    local_corpus = str(tmp_path / "corpus")
    tokenize_local(prepare_job(local_ref, tok_local, local_corpus, shard_size=4), batch_size=4)
    s3_corpus = fs.join(bucket, "corpus")
    res = subprocess.run([sys.executable, "-m", "neurolm", "tokenize", "--store", store, "--tokenizer", tok_s3,
                          "--out", s3_corpus, "--workers", "0", "--shard-size", "4"],
                         cwd=ROOT, env=_env(prefect_api), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=400)
    assert res.returncode == 0, res.stdout.decode()[-3000:]
    assert secret not in res.stdout.decode()
    a, b = TokenCorpus.open(local_corpus), TokenCorpus.open(s3_corpus)
    assert len(a) == len(b) > 0
    for i in range(len(a)):
        for key in ("codes", "ch", "time"):
            np.testing.assert_array_equal(a[i][key], b[i][key])
