"""The ingestion flow end to end: real Prefect (one local server), real Dask, real Zarr, synthetic corpora.

One store ingested once (module fixture) is shared by the checks that only read
it; the kill -9 test compares an interrupted-and-resumed store with it.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurolm.errors import StoreError
from neurolm.ingest import make_params
from neurolm.ingest.report import inspect_store
from neurolm.synth import synth_corpus
from storage.heldout import load_heldout
from storage.signal_store import SignalStore, store_lock

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_api():
    from flows.runtime import prefect_server

    with prefect_server() as url:
        yield url


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest") / "synth"
    return synth_corpus(root, n_recordings=6, minutes=1.5, n_malformed=8, seed=3)


@pytest.fixture(scope="module")
def ingested(prefect_api, corpus, tmp_path_factory):
    from flows.ingest import run_ingest

    store = str(tmp_path_factory.mktemp("stores") / "ref")
    events = []
    params = make_params(source=corpus.root, store=store, dataset="synth", workers=2, batch_size=3)
    summary = run_ingest(params, on_event=events.append)
    return store, summary, events


def _catalog(store):
    df = SignalStore.open(store).read_table("catalog").drop(columns=["run_id"])
    return df.sort_values("recording_id").reset_index(drop=True)


def test_mixed_corpus_ingested_and_malformed_quarantined_with_reasons(ingested, corpus, prefect_api):
    store_url, s, events = ingested
    assert (s["files_seen"], s["new"], s["ingested"], s["quarantined"]) == (14, 14, 6, 8)
    store = SignalStore.open(store_url)
    assert s["outputs"] == {"store": store.url, "store_version": store.version_id}  # what the next stage takes
    cat = store.read_table("catalog")
    by_path = {os.path.relpath(p, corpus.root): row for p, row in zip(cat["path"], cat.to_dict("records"))}
    for f in corpus.malformed:
        row = by_path[f.path]
        assert row["status"] == "quarantined" and f.reason.lower() in row["reason"].lower(), (f, row)
    rec = store.read_table("recordings").set_index("source_path")
    assert len(rec) == 6 and sorted(store.committed_ids()) == sorted(rec["recording_id"])
    for f in corpus.good:
        r = rec.loc[str(Path(corpus.root) / f.path)]
        assert r["n_channels"] == len(f.eeg_channels) and r["subject"] == f.subject
        assert abs(r["duration_s"] - f.duration_s) < 0.05
        assert store.verify_recording(r["recording_id"])
    win = store.read_table("windows")
    assert len(win) > 0 and set(win["recording_id"]) <= set(rec["recording_id"])
    # progress events: a plan, one per batch (5 batches of <= 3 files), then done
    kinds = [e["event"] for e in events]
    assert kinds[0] == "plan" and kinds[-1] == "done" and kinds.count("batch") == 5
    # the report and the progress artifacts exist on the Prefect server
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from uuid import UUID

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId

    # Only this run's artifacts: the session's Prefect database also holds other tests' runs.
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(s["run_id"])]))
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(flow_run_filter=this_run, artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["neurolm-ingest-report", "neurolm-ingest-progress"])))
        # the batches ran in a Dask subflow of this run (what makes deployment runs use Dask too),
        # and the run's parameters stayed small (the batches never went to the API)
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[UUID(s["run_id"])])))
        assert len(children) == 1 and client.read_flow(children[0].flow_id).name == "neurolm-ingest-batches"
    assert {a.key for a in arts} == {"neurolm-ingest-report", "neurolm-ingest-progress"}
    assert children[0].state.is_completed()
    assert children[0].parameters["n_items"] == 5 and "items" not in children[0].parameters
    report = [a for a in arts if a.key == "neurolm-ingest-report"][0].data
    assert "Quarantined" in report and "truncated" in report
    # QC figures of this store version, written under its qc/ folder and shown in the report
    qc_dir = Path(store.version_url) / "qc"
    names = ["qc_amplitude.png", "qc_channel_coverage.png", "qc_psd.png"]
    assert sorted(os.listdir(qc_dir)) == names and s["qc_error"] is None
    assert sorted(Path(u).name for u in s["qc_figures"]) == names
    for name in names:
        assert (qc_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # embedded (the UI shows it), not a file:// link a browser refuses
        png = base64.b64encode((qc_dir / name).read_bytes()).decode()
        assert f"![{name.replace('_', chr(92) + '_')}](data:image/png;base64,{png})" in report
    info = inspect_store(store_url)
    # every other file of the corpus (sidecars, the manifest) is accounted for as skipped, not silently ignored
    n_other = sum(1 for p in Path(corpus.root).rglob("*") if p.is_file()) - 14
    assert info["recordings"] == 6 and info["catalog"] == {"ingested": 6, "quarantined": 8, "skipped": n_other}
    assert set(info["skipped"]) <= {"sidecar of another recording (read through its .vhdr)",
                                    "sidecar of another recording (read through its .set)",
                                    "unknown extension .json"}
    assert len(info["quarantined"]) == 8 and info["channel_coverage"]["FP1"] == 6


def test_rerun_with_nothing_new_does_no_work(ingested, corpus):
    from flows.ingest import run_ingest

    store_url, _, _ = ingested
    before = SignalStore.open(store_url).content_hash()
    events = []
    # The plan finds nothing new, so no Dask cluster starts (workers=2 is never used here): the Dask path
    # with real work is the `ingested` fixture and tests/test_cli_defaults.py's default-path CLI run.
    s = run_ingest(make_params(source=corpus.root, store=store_url, dataset="synth", workers=2), events.append)
    assert s["nothing_to_do"] and s["ingested"] == 0 and s["unchanged"] == 14
    assert [Path(u).name for u in s["qc_figures"]] == ["qc_channel_coverage.png", "qc_amplitude.png", "qc_psd.png"]
    assert [e["event"] for e in events] == ["plan", "done"]
    assert SignalStore.open(store_url).content_hash() == before


def _cli(source, store, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "neurolm", "ingest", source, "--store", store, "--dataset", "synth",
         "--workers", "1", "--batch-size", "1", "--no-progress", *extra],
        cwd=REPO, env=os.environ.copy(), start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_when(proc, store, n_commits, timeout=240):
    """kill -9 the CLI's whole process group once ``n_commits`` commit markers exist."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = len(list(Path(store).glob("versions/*/commits/*.json")))
        if n >= n_commits:
            assert proc.poll() is None, "the run finished before it could be interrupted"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return n
        if proc.poll() is not None:
            pytest.fail(f"ingest exited early: {proc.stdout.read().decode()[-2000:]}")
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("no commit marker appeared in time")


def test_kill9_mid_run_then_resume_gives_identical_store(ingested, corpus, tmp_path):
    ref_url, _, _ = ingested
    store = str(tmp_path / "killed")
    first = _kill_when(_cli(corpus.root, store), store, 1)
    second = _kill_when(_cli(corpus.root, store), store, first + 2)
    assert first < second < 6
    proc = _cli(corpus.root, store)
    out = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, out[-3000:]
    assert "recovered" in out  # the rows of the killed runs came back from the commit markers
    ref, got = SignalStore.open(ref_url), SignalStore.open(store)
    assert got.content_hash(tables=["recordings", "windows"]) == ref.content_hash(tables=["recordings", "windows"])
    assert _catalog(store).equals(_catalog(ref_url))
    assert not (Path(store) / ".lock").exists()


def test_second_run_on_locked_store_fails_with_clear_message(ingested, corpus):
    from flows.ingest import run_ingest

    store_url, _, _ = ingested
    with store_lock(store_url, "another ingest"):
        t0 = time.monotonic()
        with pytest.raises(StoreError, match=r"store is locked by pid \d+ .*another ingest"):
            run_ingest(make_params(source=corpus.root, store=store_url, dataset="synth", lock_timeout_s=1.0))
        assert time.monotonic() - t0 >= 1.0  # it waited before giving up


def test_heldout_subjects_get_no_pretraining_windows(ingested, corpus):
    from flows.ingest import run_ingest

    store_url, _, _ = ingested
    store = SignalStore.open(store_url)
    rec = store.read_table("recordings")
    subject = rec["subject"].iloc[0]
    # through the flow's parameter (what `neurolm ingest --heldout synth:ID` passes)
    run_ingest(make_params(source=corpus.root, store=store_url, dataset="synth",
                           heldout_subjects=(f"synth:{subject}",)))
    assert f"synth:{subject}" in load_heldout(store_url)
    rec = store.read_table("recordings")
    win = store.read_table("windows")
    held = set(rec.loc[rec["subject"] == subject, "recording_id"])
    assert held and set(rec.loc[rec["subject"] == subject, "split"]) == {"heldout"}
    assert not held & set(win["recording_id"])
    assert (rec.loc[rec["subject"] != subject, "split"] != "heldout").all()


def test_incremental_add_change_touch_remove(prefect_api, corpus, tmp_path):
    from flows.ingest import run_ingest
    from neurolm.synth import default_ch_names, synth_signal, write_recording

    good = {f.format: f for f in corpus.good}
    src = tmp_path / "src"
    for fmt in ("edf", "bdf", "gdf"):
        (src / good[fmt].path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(corpus.root) / good[fmt].path, src / good[fmt].path)
    store_url = str(tmp_path / "store")
    params = make_params(source=str(src), store=store_url, dataset="inc", workers=1, batch_size=2)
    s1 = run_ingest(params)
    assert (s1["new"], s1["ingested"]) == (3, 3)
    store = SignalStore.open(store_url)
    rec = store.read_table("recordings")
    rid = dict(zip(rec["source_path"], rec["recording_id"]))
    touched, changed, removed = (str(src / good[f].path) for f in ("edf", "bdf", "gdf"))
    written_before = store.recording_meta(rid[touched])["written"]
    t = os.path.getmtime(touched) + 10
    os.utime(touched, (t, t))  # same bytes, new mtime: not re-ingested
    names = default_ch_names(20)
    write_recording(changed, "bdf", synth_signal(20, 256.0, 70, seed=5, ch_names=names), 256.0, names)
    os.unlink(removed)
    added = src / "99" / "01" / "new.edf"
    write_recording(added, "edf", synth_signal(21, 250.0, 65, seed=6, ch_names=default_ch_names(21)), 250.0,
                    default_ch_names(21))
    s2 = run_ingest(params)
    assert (s2["new"], s2["changed"], s2["unchanged"], s2["removed"], s2["ingested"]) == (1, 1, 1, 1, 2)
    store = SignalStore.open(store_url)
    assert store.recording_meta(rid[touched])["written"] == written_before
    cat = store.read_table("catalog").set_index("path")
    assert cat.loc[removed, "status"] == "removed" and store.is_committed(rid[removed])  # data kept
    assert cat.loc[touched, "mtime"] == t and cat.loc[str(added), "status"] == "ingested"
    rec = store.read_table("recordings").set_index("recording_id")
    assert rec.loc[rid[changed], "n_channels"] == 20
    s3 = run_ingest(params)
    assert s3["nothing_to_do"] and s3["ingested"] == 0


def test_qc_failure_is_a_warning_and_a_report_line(tmp_path):
    """A store whose QC cannot be drawn: no exception, a warning, and the report says why."""
    import logging

    from neurolm.ingest.run import _publish_qc
    from neurolm.ingest.report import render_run_markdown

    class Unreadable:
        version_url = str(tmp_path / "v")

        def committed_ids(self):
            raise OSError("disk went away")

    warnings: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger("neurolm-qc-test")
    logger.addHandler(handler)
    try:
        figures, error = _publish_qc(Unreadable(), True, logger.warning)
    finally:
        logger.removeHandler(handler)
    assert figures == [] and "disk went away" in error
    assert warnings == ["QC figures not written: OSError: disk went away"]
    summary = {"dataset": "d", "store": "s", "nothing_to_do": False, "files_seen": 1, "new": 1, "changed": 0,
               "unchanged": 0, "removed": 0, "ingested": 1, "skipped": 0, "quarantined": 0, "recovered": 0,
               "hours_ingested": 0.1, "wall_s": 1.0, "files_per_s": 1.0, "eeg_hours_per_hour": 360.0,
               "mb_per_s": 1.0, "dataset_recordings": 1, "dataset_hours": 0.1, "store_recordings": 1,
               "version_id": "v", "quarantine": [], "channel_coverage": {}, "qc_figures": figures,
               "qc_error": error}
    assert "QC figures not written (the ingestion itself succeeded): OSError: disk went away" in \
        render_run_markdown(summary)
