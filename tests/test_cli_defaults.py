"""Every user-facing command doing real work through its DEFAULT path, as a user types it.

Default workers (local Dask where the default uses Dask), the progress bar on
where the command has one, text output. Each test checks what the command left
behind (store, labels, checkpoint, corpus) against values computed here from the
synthetic inputs, not just the exit code. The data are tiny; one local Prefect
server is shared by the module (what `make ui`/PREFECT_API_URL does for a user),
so the cost per command is one local Dask cluster and the work itself.

The tests run in order and build on each other (ingest -> inspect -> rebuild ->
train-tokenizer -> tokenize -> tokens inspect); ``ingest-dataset`` has its own store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from neurolm.cli import main
from neurolm.ingest.discover import recording_id_for
from neurolm.synth import synth_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api():
    from flows.runtime import prefect_server

    with prefect_server() as url:
        yield url


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-defaults")
    src = d / "archive"
    # 4 good recordings (2 subjects) of 60-120 s in three formats, one malformed file
    manifest = synth_corpus(src, n_recordings=4, formats=("edf", "bdf", "fif"), minutes=1.5, n_malformed=1, seed=5)
    return {"dir": d, "src": src, "manifest": manifest, "store": str(d / "store"),
            "tok": str(d / "tok"), "corpus": str(d / "corpus")}


def _amp_at(x: np.ndarray, f: float, fs: float = 200.0) -> float:
    """Amplitude spectrum of a channel at frequency f (Hann window, mean removed)."""
    x = x.astype(np.float64) - x.mean()
    w = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * w)) * 2 / w.sum()
    return float(spec[int(round(f * len(x) / fs))])


def test_ingest_default_workers_dask_and_progress_bar(api, work, capsys):
    from storage.signal_store import SignalStore

    m, src = work["manifest"], work["src"]
    assert main(["ingest", str(src), "--store", work["store"]]) == 0  # defaults: 2 Dask workers, progress bar
    out, err = capsys.readouterr()
    good = [f for f in m.files if not f.malformed]
    bad = [f for f in m.files if f.malformed]
    assert len(good) == 4 and len(bad) == 1
    assert re.search(rf"{len(m.files)} files found, {len(m.files)} to ingest", err), err
    assert "ingest: 100%" in err  # the tqdm bar ran to the end
    store = SignalStore.open(work["store"])
    dataset = "archive"  # the source folder's name
    want = {recording_id_for(dataset, f.path): f for f in good}
    assert sorted(store.committed_ids()) == sorted(want)
    rec = store.read_table("recordings").set_index("recording_id")
    for rid, f in want.items():
        # the stored signal: the source's EEG channels, its whole length at 200 Hz
        assert rec.loc[rid, "source_path"].endswith(f.path)
        assert rec.loc[rid, "orig_sfreq"] == f.sfreq
        assert rec.loc[rid, "n_channels"] == len(f.eeg_channels)
        n = int(round(f.duration_s * 200))
        assert abs(int(rec.loc[rid, "n_samples"]) - n) <= 1
        sig = store.read_signal(rid)
        assert sig.shape[0] == len(f.eeg_channels) and abs(sig.shape[1] - n) <= 1
        assert np.isfinite(sig).all() and float(np.std(sig)) > 0
    cat = store.read_table("catalog")
    q = cat[cat["status"] == "quarantined"]
    assert [Path(p).name for p in q["path"]] == [Path(bad[0].path).name]
    assert q["reason"].iloc[0] and "\n" not in q["reason"].iloc[0]
    assert f"neurolm inspect {work['store']}" in out


def test_inspect_default_text(work, capsys):
    from storage.signal_store import SignalStore

    assert main(["inspect", work["store"]]) == 0
    out = capsys.readouterr().out
    good = [f for f in work["manifest"].files if not f.malformed]
    bad = next(f for f in work["manifest"].files if f.malformed)
    hours = sum(f.duration_s for f in good) / 3600  # from the synthetic inputs, not from the store
    version = SignalStore.open(work["store"]).version_id
    assert f"version {version} (complete)" in out
    assert f"{len(good)} recordings, {hours:.3f} h; {len(good)} committed signals" in out, out
    subjects = len({f.subject for f in good})
    assert f"dataset archive: {len(good)} recordings, {subjects} subjects, {hours:.3f} h" in out, out
    assert "catalog: ingested 4, quarantined 1" in out
    assert re.search(rf"quarantined \S*{re.escape(Path(bad.path).name)}: .*{bad.reason}", out, re.I), out


def test_rebuild_default_workers_does_real_work(api, work, capsys):
    from neurolm.ingest.rebuild import version_summaries
    from storage.signal_store import SignalStore

    old = SignalStore.open(work["store"])
    assert old.config.notch_hz == 60.0
    assert main(["rebuild", "--store", work["store"], "--notch", "50"]) == 0  # default: 2 Dask workers
    out = capsys.readouterr().out
    new = SignalStore.open(work["store"])
    assert new.version_id in out and "nothing to do" not in out
    assert new.version_id != old.version_id and new.config.notch_hz == 50.0
    assert sorted(new.committed_ids()) == sorted(old.committed_ids())
    assert {v["version_id"]: v["current"] for v in version_summaries(work["store"])} == \
        {old.version_id: False, new.version_id: True}
    # The synthetic archive carries 60 Hz mains: the old version notched it out, the new (50 Hz notch) keeps it.
    rid = sorted(new.committed_ids())[0]
    a, b = old.read_signal(rid), new.read_signal(rid)
    assert a.shape == b.shape
    kept = np.median([_amp_at(ch, 60.0) for ch in b])
    removed = np.median([_amp_at(ch, 60.0) for ch in a])
    assert kept > 20 * removed, (kept, removed)
    assert sorted(os.listdir(Path(new.version_url) / "qc")) == \
        ["qc_amplitude.png", "qc_channel_coverage.png", "qc_psd.png"]


def test_ingest_dataset_default_workers(api, tmp_path, capsys):
    from neurolm.datasets.synth import synth_dataset
    from storage.signal_store import SignalStore

    m = synth_dataset("hmc", tmp_path / "hmc", seed=2)
    store_url = str(tmp_path / "store")
    assert main(["ingest-dataset", "hmc", m["root"], "--store", store_url]) == 0  # defaults: 2 Dask workers
    capsys.readouterr()
    store = SignalStore.open(store_url)
    labels = store.read_table("labels")
    # one 30-s epoch per scored stage of each night, in order, with HMC's codes (W 0, N1 1, N2 2, N3 3, R 4;
    # NEUROLM_REFERENCE.md) and 30 s x 200 Hz samples each
    codes = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4}
    by_name = {Path(f["path"]).name: f for f in m["files"]}
    assert {Path(s).name for s in labels["source"]} == set(by_name)
    for src, grp in labels.groupby("source"):
        f = by_name[Path(src).name]
        grp = grp.sort_values("start")
        assert grp["label"].tolist() == [codes[s] for s in f["stages"]]
        assert grp["start"].tolist() == [k * 30 * 200 for k in range(len(f["stages"]))]
        assert set(grp["length"]) == {30 * 200} and set(grp["task"]) == {"HMC"}
    assert len(store.committed_ids()) == len(m["files"])


def test_train_tokenizer_default_path(api, work, capsys):
    from neurolm.tokenizer import load_tokenizer
    from storage.checkpoints import list_checkpoints

    # default config (tiny), device, resume and progress bar; only the number of steps is cut
    assert main(["train-tokenizer", "--store", work["store"], "--out", work["tok"], "--steps", "3"]) == 0
    out, err = capsys.readouterr()
    assert "train-tokenizer" in err and "3/3" in err  # the bar reached the last step
    assert [step for step, _ in list_checkpoints(work["tok"])][-1] == 3
    m = re.search(r"checkpoint (\S+) \(sha256 ([0-9a-f]{12})\)", out)
    assert m, out
    ckpt = Path(m.group(1))
    assert ckpt.name == "ckpt-000000003"
    weights = (ckpt / "model.safetensors").read_bytes()
    digest = hashlib.sha256(weights).hexdigest()  # over the bytes on disk, independently of the checkpoint code
    assert digest.startswith(m.group(2))
    manifest = json.loads((ckpt / "manifest.json").read_text())
    assert digest in json.dumps(manifest)  # the manifest written last records the same bytes
    model = load_tokenizer(work["tok"])
    assert model.config.name == "tiny"


def test_tokenize_default_workers_dask(api, work, capsys):
    from neurolm.corpus.reader import TokenCorpus
    from storage.signal_store import SignalStore

    assert main(["tokenize", "--store", work["store"], "--tokenizer", work["tok"], "--out", work["corpus"]]) == 0
    out, err = capsys.readouterr()
    assert "nothing to do" not in out and "shards tokenized now" in out
    tc = TokenCorpus.open(work["corpus"])
    store = SignalStore.open(work["store"])
    win = store.read_table("windows")
    pretrain = win[win["split"].isin(["train", "val", "test"])]
    assert len(tc) > 0 and set(tc.manifest["recording_id"]) == set(pretrain["recording_id"])
    # the tiny tokenizer takes 256 tokens: floor(256 / n_ch) one-second patches of every channel per sample,
    # consecutive samples tiling each stored window
    n_ch = store.read_table("recordings").set_index("recording_id")["n_channels"]
    per_sample = {rid: 256 // int(n) for rid, n in n_ch.items()}  # seconds per sample
    want = sum(int(w.length) // (per_sample[w.recording_id] * 200) for w in pretrain.itertuples())
    assert len(tc) == want
    assert all(int(r.n_tokens) == per_sample[r.recording_id] * int(n_ch[r.recording_id])
               for r in tc.manifest.itertuples())
    # every sample's codes lie in the codebook
    size = tc.codebook_size
    total = 0
    for i in range(len(tc)):
        s = tc[i]
        assert s["codes"].size > 0 and 0 <= s["codes"].min() and s["codes"].max() < size
        total += int(s["codes"].size)
    assert total == tc.n_tokens


def test_tokens_inspect_default_text(work, capsys):
    from neurolm.corpus.reader import TokenCorpus

    assert main(["tokens", "inspect", work["corpus"]]) == 0
    out = capsys.readouterr().out
    tc = TokenCorpus.open(work["corpus"])
    codes = np.concatenate([tc[i]["codes"].ravel() for i in range(len(tc))])  # counted here, sample by sample
    assert f"- samples: {len(tc):,} in " in out
    assert f"- tokens: {codes.size:,} " in out
    assert f"- codes used: {len(np.unique(codes)):,} / {tc.codebook_size:,}" in out
    top = np.bincount(codes).argmax()
    assert re.search(rf"\| {top} \| {int((codes == top).sum()):,} \|", out), out
