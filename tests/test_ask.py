"""`neurolm ask` on a synthetic HMC recording, and its one-line refusals of files that cannot serve a task."""

from __future__ import annotations

import json

import pytest

from neurolm.cli import main
from neurolm.corpus.fixtures import save_random_tokenizer
from neurolm.datasets.synth import synth_dataset
from neurolm.datasets.synth.common import write_edf_file
from neurolm.instruct.ask import resolve_task
from neurolm.instruct.eval_fixtures import save_tiny_model
from storage.checkpoints import resolve

QUESTION = "Which sleep type does this EEG segment belong to?"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ask")
    info = synth_dataset("hmc", d / "hmc")
    edf = str(d / "hmc" / info["files"][0]["path"])
    tok = save_random_tokenizer(str(d / "tok"), "tiny")
    model = save_tiny_model(str(d / "model"), tokenizer=tok,
                            lineage={"tokenizer": tok, "tokenizer_sha256": resolve(tok)[1]})
    return d, edf, model, info["files"][0]["seconds"]


def test_ask_answers_with_option_probabilities(setup, capsys):
    d, edf, model, seconds = setup
    assert main(["ask", edf, QUESTION, "--model", model, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["task"] == "hmc" and out["prompt"].endswith("Answer: (")
    assert out["channels"] == ["F4", "C4", "O2", "C3"] and out["window_s"] == 30.0
    assert out["n_eeg_tokens"] == 4 * 30
    probs = [o["probability"] for o in out["options"]]
    assert [o["class"] for o in out["options"]] == ["W", "N1", "N2", "N3", "R"]
    assert sum(probs) == pytest.approx(1.0) and all(0 < p < 1 for p in probs)
    assert out["best"] == out["options"][max(range(5), key=probs.__getitem__)]["class"]
    # another window of the same file is other EEG: other codes, other probabilities
    assert main(["ask", edf, QUESTION, "--model", model, "--json", "--start", "60"]) == 0
    later = json.loads(capsys.readouterr().out)
    assert later["start_s"] == 60.0 and [o["probability"] for o in later["options"]] != probs
    # human-readable output names every option and the generated answer
    assert main(["ask", edf, "x", "--task", "hmc", "--model", model]) == 0
    text = capsys.readouterr().out
    assert "task hmc" in text and "generated:" in text and all(c in text for c in ("NREM-1", "REM"))


def test_files_that_cannot_serve_the_task(setup, capsys):
    d, edf, model, seconds = setup
    two = write_edf_file(d / "two.edf", ["EEG F4-M1", "EEG C4-M1", "ECG"], 256.0, 60, 1, mains_hz=50.0)
    assert main(["ask", str(two), QUESTION, "--model", model]) == 2
    err = capsys.readouterr().err
    assert "missing channels: O2, C3" in err and err.count("\n") == 1
    assert main(["ask", edf, QUESTION, "--model", model, "--start", str(seconds - 10)]) == 2
    err = capsys.readouterr().err
    assert "too short" in err and "30 s window" in err
    assert main(["ask", edf, "What is the weather?", "--model", model]) == 2
    assert "matches no task" in capsys.readouterr().err


def test_question_picks_the_task():
    assert resolve_task("Is this EEG segment abnormal?").name == "tuab"
    assert resolve_task("question: which EMOTION type does this EEG segment belong to?  Answer:").name == "seed"
    assert resolve_task("Which type does this EEG segment belong to?").name == "tusl"
    assert resolve_task("anything", "Workload").name == "workload"


def test_the_file_is_standardized_as_the_models_store_was(setup, tmp_path, capsys):
    """A store built with another config (here a 40 Hz low-pass) standardizes the asked file the same way."""
    import numpy as np

    from neurolm.instruct.ask import read_window, training_standardization
    from neurolm.instruct.tasks import get_task
    from neurolm.standardize import StandardizeConfig
    from storage.corpus_format import CorpusLineage
    from storage.signal_store import SignalStore
    from storage.token_corpus import TokenCorpusStore

    d, edf, _, _ = setup
    store = SignalStore.open(str(tmp_path / "store"), create=True, config=StandardizeConfig(h_freq=40.0))
    corpus = TokenCorpusStore.open(str(tmp_path / "corpus"), create=True)
    lin = CorpusLineage(store_version=store.version_id, store_content="x", vocab_version="v", tokenizer_sha256="t",
                        tokenizer_config_hash="h", datasets=None, splits=None, shard_size=1,
                        info={"kind": "labeled", "store_url": str(tmp_path / "store")}, kind="labeled")
    version = corpus.version(lin.version_id())
    version.ensure_lineage(lin)
    tok = str(d / "tok")
    lineage = {"tokenizer": tok, "tokenizer_sha256": resolve(tok)[1], "corpus": str(tmp_path / "corpus"),
               "corpus_version": version.version_id}
    model = save_tiny_model(str(tmp_path / "model"), tokenizer=tok, lineage=lineage)

    config, source = training_standardization(model)
    assert config.h_freq == 40.0 and store.version_id in source
    hmc = get_task("hmc")
    ours, _, _ = read_window(edf, hmc, 0.0, config)
    default, _, _ = read_window(edf, hmc, 0.0)
    assert not np.allclose(ours, default, atol=1e-3)  # the config reaches the filter
    assert main(["ask", edf, QUESTION, "--model", model, "--json"]) == 0
    assert store.version_id in json.loads(capsys.readouterr().out)["standardization"]

    # a model whose lineage names no corpus: NeuroLM's default, and the answer says so
    config, source = training_standardization(setup[2])
    assert config == StandardizeConfig() and "default" in source
