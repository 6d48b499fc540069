"""The tokenize flow and CLI: kill -9 mid-run then rerun = uninterrupted run; nothing to do; inspect."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from neurolm.cli import main as cli_main
from neurolm.corpus.fixtures import build_signal_store, save_random_tokenizer
from neurolm.corpus.params import TokenizeParams
from neurolm.corpus.reader import TokenCorpus
from neurolm.corpus.run import tokenize_local
from neurolm.corpus.tokenize import prepare_job
from storage.token_corpus import TokenCorpusStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("flow")
    store, ckpt = str(d / "store"), str(d / "tok")
    build_signal_store(store, n_recordings=3, n_ch=16, seed=3)
    save_random_tokenizer(ckpt, "tiny", seed=0)
    return d, store, ckpt


def _markers(corpus: str) -> list[str]:
    return glob.glob(os.path.join(corpus, "versions", "*", "commits", "*.json"))


def test_kill_mid_run_then_rerun_equals_uninterrupted(inputs):
    from flows.runtime import prefect_server
    from flows.tokenize_corpus import run_tokenize

    d, store, ckpt = inputs
    reference = tokenize_local(prepare_job(store, ckpt, str(d / "ref"), shard_size=1))["status"]
    n = reference["n_shards"]
    assert n == reference["n_samples"] == 12  # 3 recordings x one 64-s window x four 16-s tiny samples
    corpus = str(d / "killed")
    with prefect_server() as api:  # shared with the subprocess: it starts no server of its own
        env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": ROOT}
        proc = subprocess.Popen(
            [sys.executable, "-m", "neurolm", "tokenize", "--store", store, "--tokenizer", ckpt, "--out", corpus,
             "--shard-size", "1", "--batch-size", "1", "--workers", "0"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while not _markers(corpus) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        if proc.poll() is not None:  # finished or crashed before we could kill it
            pytest.fail(f"neurolm tokenize exited ({proc.returncode}) before the kill:\n"
                        + proc.communicate()[0].decode(errors="replace"))
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0].decode(errors="replace")
        committed = len(_markers(corpus))
        assert proc.returncode == -signal.SIGKILL, out
        assert 1 <= committed < n, f"kill did not land mid-run ({committed} shards committed)\n{out}"
        v = TokenCorpusStore.open(corpus).version(reference["version_id"])
        assert not v.is_complete()
        with pytest.raises(Exception, match="no complete version"):
            TokenCorpus.open(corpus)
        # debris of a writer killed mid-shard: must be discarded and rewritten, never read
        todo = [k for k in range(n) if not v.is_committed(k)]
        os.makedirs(v.shard_url(todo[-1]), exist_ok=True)
        with open(os.path.join(v.shard_url(todo[-1]), "zarr.json"), "w") as f:
            f.write("{torn")
        events = []
        params = TokenizeParams.build(store=store, tokenizer=ckpt, out=corpus, shard_size=1, workers=1)
        summary = run_tokenize(params, on_event=events.append)
        assert summary["shards_done_now"] == n - committed and not summary["nothing_to_do"]
        assert summary["content_hash"] == reference["content_hash"]
        out = TokenCorpusStore.open(summary["outputs"]["corpus"]).version(summary["outputs"]["corpus_version"])
        assert out.is_complete() and summary["outputs"]["corpus_version"] == reference["version_id"]
        assert [e["event"] for e in events][0] == "plan" and events[-1]["event"] == "done"
        a, b = TokenCorpus.open(str(d / "ref")), TokenCorpus.open(corpus)
        assert a.manifest.equals(b.manifest)
        for i in range(len(a)):
            np.testing.assert_array_equal(a[i]["codes"], b[i]["codes"])
        again = run_tokenize(params.model_copy(update={"workers": 0}))
        assert again["nothing_to_do"] and again["shards_done_now"] == 0
        assert again["content_hash"] == reference["content_hash"]
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        with get_client(sync_client=True) as client:
            arts = client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["neurolm-tokenize-report", "neurolm-tokenize-progress"])))
        kinds = {(a.key, a.type) for a in arts}
        assert ("neurolm-tokenize-report", "markdown") in kinds and ("neurolm-tokenize-progress", "progress") in kinds
        report = [a for a in arts if a.key == "neurolm-tokenize-report"]
        assert any(reference["version_id"] in str(a.data) and "perplexity" in str(a.data) for a in report)


def test_cli_nothing_to_do_inspect_and_errors(inputs, capsys):
    d, store, ckpt = inputs
    corpus = str(d / "ref")  # built by the previous test, or here when run alone
    tokenize_local(prepare_job(store, ckpt, corpus, shard_size=1))
    assert cli_main(["tokenize", "--store", store, "--tokenizer", ckpt, "--out", corpus, "--shard-size", "1"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    # --verify: a flipped byte in a committed shard is reported, exit 2
    import shutil

    import zarr

    from storage import fs
    broken = str(d / "broken")
    shutil.copytree(corpus, broken)
    assert cli_main(["tokens", "inspect", broken, "--verify"]) == 0
    assert "12 shards verified" in capsys.readouterr().out
    v = TokenCorpusStore.open(broken).resolve()
    g = zarr.open_group(fs.zarr_store(v.shard_url(5)), mode="r+")
    g["codes"][3] = (int(g["codes"][3]) + 1) % 512
    assert cli_main(["tokens", "inspect", broken, "--verify"]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert cli_main(["tokens", "inspect", corpus, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_samples"] == 12 and rep["n_tokens"] == 12 * 256 and rep["status"] == "complete"
    assert rep["by_split"] == {"train": {"samples": 8, "tokens": 2048}, "val": {"samples": 4, "tokens": 1024}}
    c = rep["codes"]
    assert c["tokens_counted"] == 12 * 256 and 1 < c["codes_used"] <= 512 and c["codebook_size"] == 512
    assert 1.0 < c["perplexity"] <= c["codes_used"]
    assert rep["lineage"]["shard_size"] == 1 and rep["lineage"]["tokenizer_sha256"]
    assert cli_main(["tokens", "inspect", corpus]) == 0
    text = capsys.readouterr().out
    assert "codes used" in text and "perplexity" in text and "| val | 4 |" in text
    # bad arguments and inputs: exit 2 with a one-line reason, nothing created
    for argv, msg in [
        (["--shard-size", "0"], "shard_size"),
        (["--device", "tpu"], "device"),
        (["--splits", "training"], "unknown split"),
        (["--datasets", "nope"], "not in store"),
    ]:
        rc = cli_main(["tokenize", "--store", store, "--tokenizer", ckpt, "--out", str(d / "bad")] + argv)
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert cli_main(["tokenize", "--store", str(d / "missing"), "--tokenizer", ckpt, "--out", str(d / "bad")]) == 2
    assert "no signal store" in capsys.readouterr().err
    assert cli_main(["tokens", "inspect", str(d / "bad")]) == 2
    assert "no token corpus" in capsys.readouterr().err
    assert not os.path.exists(d / "bad")
