"""``neurolm ingest`` as cron, CI and deployments run it: a subprocess, default path, output to a file.

The default path is a progress bar and 2 local Dask workers. A regression once made the bar
reachable from what Prefect sends to Dask (the task graph could not be deserialized), and only
this kind of run showed it: in-process tests passed listeners that happen to pickle.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import cloudpickle

from neurolm.synth import synth_corpus
from storage.signal_store import SignalStore

REPO = Path(__file__).resolve().parents[1]


def test_cli_ingest_default_path_on_dask_writes_the_store(tmp_path):
    corpus = synth_corpus(tmp_path / "src", n_recordings=4, minutes=0.5, formats=("edf", "fif"), n_malformed=1,
                          seed=11)
    store = tmp_path / "store"
    log = tmp_path / "ingest.log"
    with open(log, "wb") as out:  # no terminal: stdout and stderr to a file
        rc = subprocess.run([sys.executable, "-m", "neurolm", "ingest", str(corpus.root), "--store", str(store),
                             "--workers", "2"], cwd=REPO, env=os.environ.copy(), stdin=subprocess.DEVNULL,
                            stdout=out, stderr=subprocess.STDOUT, timeout=480).returncode
    text = log.read_text(errors="replace")
    assert rc == 0, text[-4000:]
    assert "Traceback" not in text and "deserialization" not in text, text[-4000:]

    s = SignalStore.open(str(store))
    committed = s.committed_ids()
    catalog = s.read_table("catalog")
    assert len(committed) == len(corpus.good) == 4
    assert (catalog["status"] == "ingested").sum() == len(committed)
    assert (catalog["status"] == "quarantined").sum() == 1
    assert catalog.loc[catalog["status"] == "quarantined", "reason"].str.len().gt(0).all()
    recordings = s.read_table("recordings")
    assert set(recordings["recording_id"]) == set(committed)
    # every committed recording holds real signal, as long as its metadata says
    for rid in committed:
        meta = s.recording_meta(rid)
        x = s.read_signal(rid, 0, min(400, meta["n_samples"]))
        assert x.shape[0] == len(meta["ch_names"]) and float(abs(x).max()) > 0


def test_flow_functions_carry_nothing_process_local_to_dask():
    """What Prefect pickles for a Dask task (the task, the running flow) must not drag listeners or jobs."""
    from prefect import Flow, Task

    import flows.fanout as fanout
    import flows.ingest as ingest
    import flows.ingest_dataset as ingest_dataset
    import flows.pretrain as pretrain
    import flows.rebuild as rebuild
    import flows.tokenize_corpus as tokenize_corpus
    import flows.train_tokenizer as train_tokenizer

    unpicklable = threading.Lock()  # stands for a progress bar, a client, a lock: never picklable

    def listener(event: dict) -> None:
        assert unpicklable is not None

    job_id = "test-job"
    fanout._JOBS[job_id] = fanout._Job(len, [["x"] * 1000], ["a"], lambda outcome: unpicklable)
    modules = (fanout, ingest, ingest_dataset, pretrain, rebuild, tokenize_corpus, train_tokenizer)
    try:
        with ingest._events.listening(listener), tokenize_corpus._events.listening(listener), \
                train_tokenizer._events.listening(listener), pretrain._events.listening(listener):
            checked = 0
            for module in modules:
                for name, obj in vars(module).items():
                    if isinstance(obj, (Flow, Task)):
                        buf = io.BytesIO()
                        cloudpickle.CloudPickler(buf).dump(obj)  # raises on the lock if it is reachable
                        assert buf.tell() < 200_000, f"{module.__name__}.{name} pickles to {buf.tell()} bytes"
                        checked += 1
            assert checked >= 6
    finally:
        fanout._JOBS.pop(job_id, None)
