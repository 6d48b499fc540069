"""`neurolm build` for real on a tiny archive: the Prefect build (a subflow per stage), its rerun doing
nothing and saying so, and a build killed (SIGKILL) during ingestion and again during tokenizer
training that, rerun, ends with the same store, corpus and model weights as the uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from neurolm.cli import main
from storage import build_state, fs
from storage.checkpoints import list_checkpoints
from storage.signal_store import SignalStore
from storage.token_corpus import TokenCorpusStore

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """Six short recordings (three subjects: two train, one val with split seed 3) and one broken file."""
    from neurolm.synth.corpus import synth_corpus

    root = tmp_path_factory.mktemp("archive")
    synth_corpus(root / "src", n_recordings=6, formats=("edf", "bdf"), minutes=2, n_malformed=1, seed=0)
    (root / "tok.yaml").write_text("model: {preset: tiny}\ntrain: {preset: tiny, steps: 30, ckpt_every: 10, "
                                   "warmup_steps: 2, num_workers: 0}\n")
    return root


def _config(archive: Path, out: Path) -> str:
    path = out.parent / f"{out.name}.yaml"
    path.write_text(f"""\
name: tiny
outputs: {{root: {out}}}
sources:
  - {{source: {archive / 'src'}, dataset: src, seed: 3, workers: 1}}
train_tokenizer: {{config: {archive / 'tok.yaml'}}}
tokenize: {{workers: 0, shard_size: 8}}
pretrain: {{config: tiny, steps: 3, batch_size: 2, text_batch_size: 0, max_len: 256, warmup_steps: 1}}
""")
    return str(path)


def _artifacts(out: Path) -> dict:
    """Content hashes of the store and the corpus, and the model's tensors."""
    state = build_state.read_state(str(out))
    store = SignalStore.open(state["ingest src"]["outputs"]["store"])
    corpus = state["tokenize"]["outputs"]
    vid = TokenCorpusStore.open(corpus["corpus"]).current()
    status = fs.read_json(fs.join(corpus["corpus"], "versions", vid, "corpus.json"))
    model = Path(state["pretrain"]["outputs"]["model"])
    tensors = {f"{p.name}:{k}": v for p in sorted(model.glob("*.safetensors")) for k, v in load_file(str(p)).items()}
    return {"store": store.content_hash(), "corpus": (vid, status["content_hash"]), "tensors": tensors,
            "tokenizer": state["train-tokenizer"]["outputs"]["checkpoint_sha256"]}


def _build(config: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "neurolm", "build", config, "--local", *extra], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when(proc: subprocess.Popen, ready, what: str, timeout_s: float = 1800) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"the build ended before {what}:\n{proc.stdout.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"never saw {what}")


@pytest.fixture(scope="module")
def clean(archive, tmp_path_factory):
    """The uninterrupted build through the Prefect flow (one subflow per stage), its rerun and dry run."""
    import contextlib
    import io

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.runtime import prefect_server

    out = tmp_path_factory.mktemp("clean-build") / "clean"
    config = _config(archive, out)
    texts = []
    with prefect_server(timeout_s=900):  # a loaded 2-core box can take minutes to start it
        for argv in (["build", config], ["build", config], ["build", config, "--dry-run"]):
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                assert main(argv) == 0
            texts.append(buf.getvalue())
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs()
            flows = {f.id: f.name for f in client.read_flows()}
            reports = [str(a.data) for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["neurolm-build-report"])))]
    return {"out": out, "texts": texts, "runs": runs, "flows": flows, "reports": reports}


@pytest.mark.timeout(2400)
def test_build_runs_every_stage_as_a_subflow_and_its_rerun_does_nothing(clean):
    first, again, plan = clean["texts"]
    runs, flows = clean["runs"], clean["flows"]
    for step in ("ingest src", "train-tokenizer", "tokenize", "pretrain"):
        assert f"{step}: ran" in first
        assert f"{step}: skipped: up to date" in again
    assert "nothing to do: every step is up to date" in again
    assert "everything is up to date: nothing to do" in plan
    builds = [r for r in runs if flows[r.flow_id] == "neurolm-build"]
    assert len(builds) == 2 and all(r.state.is_completed() for r in builds)
    children = {flows[r.flow_id] for r in runs if r.parent_task_run_id}
    assert {"neurolm-ingest", "neurolm-train-tokenizer", "neurolm-tokenize", "neurolm-pretrain"} <= children
    # every run is named by its stage (no random "heavy-rabbit"), the fan-out by its parent and items
    assert all(" " in r.name for r in runs), sorted(r.name for r in runs)
    assert any(r.name.startswith("ingest src: ingest-batches (") for r in runs)
    state = build_state.read_state(str(clean["out"]))
    report = max(clean["reports"], key=lambda r: "step(s) ran" in r)  # the first build's report
    for step, key in (("ingest src", "store"), ("train-tokenizer", "checkpoint"), ("tokenize", "corpus"),
                      ("pretrain", "model")):  # the final artifact links every output
        assert state[step]["outputs"][key] in report


@pytest.mark.timeout(2400)
def test_a_build_killed_twice_ends_like_the_uninterrupted_one(archive, clean, tmp_path):
    expected = _artifacts(clean["out"])
    # the same build killed during ingestion (a recording committed, the step not recorded) ...
    crashed = tmp_path / "crashed"
    config = _config(archive, crashed)
    commits = lambda: list(crashed.glob("store/versions/*/commits/*.json"))  # noqa: E731
    recorded = lambda step: step in build_state.read_state(str(crashed))  # noqa: E731
    _kill_when(_build(config), lambda: commits() and not recorded("ingest src"), "a committed recording")
    assert not build_state.read_state(str(crashed))
    # ... and again during tokenizer training (a checkpoint written, the step not recorded)
    proc = _build(config)
    _kill_when(proc, lambda: any(list_checkpoints(str(d)) for d in crashed.glob("tokenizer/t-*"))
               and not recorded("train-tokenizer"), "a tokenizer checkpoint")
    assert set(build_state.read_state(str(crashed))) == {"ingest src"}
    proc = _build(config, "--json")
    out, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 0, out
    result, _ = json.JSONDecoder().raw_decode(out[out.index("{\n"):])
    assert [(s["step"], s["action"]) for s in result["steps"]] == [
        ("ingest src", "skip"), ("train-tokenizer", "run"), ("tokenize", "run"), ("pretrain", "run")]
    got = _artifacts(crashed)
    assert got["store"] == expected["store"]  # ingestion killed midway: the same store content
    tok = Path(build_state.read_state(str(crashed))["train-tokenizer"]["outputs"]["checkpoint"]).parent
    assert [s for s, _ in list_checkpoints(str(tok))][-1] == 30  # continued to the end from its checkpoint
    # the same tokenizer (one sha256 whatever process wrote it: storage.checkpoints.canonical_safetensors),
    # hence the same corpus version and content, and the same model weights
    assert got["tokenizer"] == expected["tokenizer"]
    assert got["corpus"] == expected["corpus"]
    assert got["tensors"].keys() == expected["tensors"].keys()
    for k, v in expected["tensors"].items():
        np.testing.assert_array_equal(got["tensors"][k], v, err_msg=k)
