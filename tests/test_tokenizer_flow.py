"""Tokenizer on a real signal store: the dataset contract, the Prefect flow, the CLI and its early errors."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from neurolm.cli import main
from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer import load_tokenizer
from neurolm.tokenizer.data import StoreSampleDataset, build_sample
from neurolm.tokenizer.run import prepare_run
from neurolm.tokenizer.synthetic import DEFAULT_CHANNELS, write_rhythm_store
from storage.checkpoints import checkpoint_sha256, list_checkpoints, load_latest_good
from neurolm.samples import sample_seconds
from storage.signal_store import SignalStore


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("tok") / "store")
    write_rhythm_store(url, n_recordings=3, n_ch=8, seconds=70)  # 1 window each (64 s); #3 is val
    return url


def test_store_dataset_reads_windows_as_samples(store):
    ds = StoreSampleDataset(store, split="train", max_tokens=256)
    win = sample_seconds(8) * 200
    assert ds.rows == [("synth-rhythm-000", 0, win), ("synth-rhythm-001", 0, win)]
    item = ds[1]
    assert int(item["mask"].sum()) == 256  # 8 ch × 32 s: cropped to what max_tokens holds
    s = SignalStore.open(store)
    expect = build_sample(s.read_signal("synth-rhythm-001", 0, 32 * 200), DEFAULT_CHANNELS[:8], max_tokens=256)
    assert torch.equal(item["x"], expect["x"]) and torch.equal(item["ch"], expect["ch"])
    assert len(StoreSampleDataset(store, split="val", max_tokens=256)) == 1
    # worker processes open the store themselves and see the same samples
    loader = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    batch = next(iter(loader))
    assert torch.equal(batch["x"][1], item["x"]) and torch.equal(batch["y_freq"][1], item["y_freq"])


def test_errors_before_work(store, tmp_path):
    with pytest.raises(StoreError, match="no signal store"):
        prepare_run(str(tmp_path / "nothing"), str(tmp_path / "o"))
    with pytest.raises(StoreError, match="no 'test' windows"):
        prepare_run(store, str(tmp_path / "o"), split="test")
    with pytest.raises(ConfigError, match="preset"):
        prepare_run(store, str(tmp_path / "o"), config="huge")
    with pytest.raises(ConfigError, match="--steps"):
        prepare_run(store, str(tmp_path / "o"), steps=0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {preset: tiny, d_model: 65}\n")
    with pytest.raises(ConfigError, match="divisible"):
        prepare_run(store, str(tmp_path / "o"), config=str(bad))
    assert main(["train-tokenizer", "--store", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2


def test_cli_runs_the_flow_resumes_and_refuses_no_resume(store, tmp_path, capsys):
    from flows.runtime import prefect_server

    with prefect_server():  # one API server for the three runs (each would otherwise start its own)
        sha = _cli_runs(store, tmp_path, capsys)
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        keys = ["neurolm-tokenizer-progress", "neurolm-tokenizer-metrics", "neurolm-tokenizer-report"]
        with get_client(sync_client=True) as client:
            arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    kinds = {(a.key, a.type) for a in arts}
    assert {("neurolm-tokenizer-progress", "progress"), ("neurolm-tokenizer-metrics", "table"),
            ("neurolm-tokenizer-report", "markdown")} <= kinds
    reports = [str(a.data) for a in arts if a.key == "neurolm-tokenizer-report"]
    assert any(sha in r and "loss_curve.png" in r and "store_version" in r for r in reports)
    # the loss curve is shown inside the UI (embedded), not a path a browser cannot open
    with open(os.path.join(str(tmp_path / "vq"), "loss_curve.png"), "rb") as f:
        png = base64.b64encode(f.read()).decode()
    assert any(f"(data:image/png;base64,{png})" in r for r in reports)
    # the metrics table holds rounded numbers (4 significant digits), not 16-digit floats
    table = json.loads(next(a.data for a in arts if a.key == "neurolm-tokenizer-metrics"))
    floats = [v for row in table for v in row.values() if isinstance(v, float)]
    assert floats and all(v == float(f"{v:.4g}") for v in floats)
    assert any(v != float(f"{v:.3g}") for v in floats)  # not coarser than that either


def _cli_runs(store, tmp_path, capsys):
    out = str(tmp_path / "vq")
    args = ["train-tokenizer", "--store", store, "--config", "tiny", "--out", out, "--steps", "4", "--batch-size", "2"]
    assert main(args) == 0
    assert [s for s, _ in list_checkpoints(out)] == [4]
    lineage = load_latest_good(out).lineage  # the token corpus checks this against the store
    assert lineage["vocab_version"] == SignalStore.open(store).vocab_version
    assert lineage["store_version"] == SignalStore.open(store).version_id
    assert os.path.exists(os.path.join(out, "loss_curve.png")) and os.path.exists(os.path.join(out, "metrics.md"))
    tok = load_tokenizer(out)
    ds = StoreSampleDataset(store, max_tokens=256, freq_bins=100)
    codes = tok.encode_codes(*(ds[0][k][None] for k in ("x", "ch", "time", "mask")))
    assert codes.shape == (1, 256) and (codes >= 0).all()
    sha = checkpoint_sha256(out)
    assert main(args) == 0  # already at step 4: nothing changes
    assert checkpoint_sha256(out) == sha
    assert main(args[:-4] + ["--steps", "6", "--batch-size", "2"]) == 0  # resumes 4 → 6
    assert [s for s, _ in list_checkpoints(out)][-1] == 6
    assert main(args + ["--no-resume"]) == 2
    err = capsys.readouterr().err
    assert "already holds checkpoints" in err
    assert np.isfinite(float(load_tokenizer(out).VQ.quantize.embedding.weight.sum()))
    return checkpoint_sha256(out)


def test_library_stage_summary_outputs_what_tokenize_takes(store, tmp_path):
    from neurolm.tokenizer.params import TrainTokenizerParams
    from neurolm.tokenizer.run import train_tokenizer
    from storage import checkpoints

    events = []
    params = TrainTokenizerParams(store=store, out=str(tmp_path / "vq"), steps=2, batch_size=2)
    summary = train_tokenizer(params, emit=events.append)
    out = summary["outputs"]
    assert set(out) == {"checkpoint", "checkpoint_sha256", "tokenizer_config_hash"}
    assert out["checkpoint"] == load_latest_good(params.out).path
    assert checkpoints.resolve(out["checkpoint"]) == (out["checkpoint"], out["checkpoint_sha256"])  # as tokenize does
    assert out["tokenizer_config_hash"] == load_tokenizer(out["checkpoint"]).config.config_hash()
    assert events[0]["event"] == "prepared" and events[0]["windows"] == 2 and events[-1] == {
        "event": "step", "step": 2, "total": 2}
