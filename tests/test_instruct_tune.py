"""Instruction tuning runs: a tiny model learns two tasks from the EEG; a finished run does nothing again;
bad inputs (lineage, windows, corpora) are refused with one clear error before any work."""

from __future__ import annotations

import json
import os

import pytest

from schemas.io import TableValidationError
import torch
from test_instruct_data import _rewrite

from neurolm.errors import ConfigError, StoreError
from neurolm.instruct.fixtures import save_untrained_model, write_labeled_corpus
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import prepare, tune
from neurolm.lm.io import load_lm


@pytest.fixture(scope="module")
def init(tmp_path_factory):
    return save_untrained_model(str(tmp_path_factory.mktemp("init") / "model"))


def params(corpus, init, out, **kw) -> TuneParams:
    base = dict(corpus=corpus, init=init, out=str(out), steps=40, batch_size=16, text_batch_size=1, text_seq_len=32,
                lr=1e-2, eeg_len=32, evaluate=False)
    return TuneParams(**{**base, **kw})


def test_a_tiny_model_learns_two_tasks_from_the_eeg(init, tmp_path):
    corpus = write_labeled_corpus(str(tmp_path / "c"), {"TUAB": 24, "SEED": 16}, band=2)
    before = tune(params(corpus, init, tmp_path / "o", steps=1))["val"]["answer_accuracy_per_task"]
    s = tune(params(corpus, init, tmp_path / "o"))
    acc = s["val"]["answer_accuracy_per_task"]
    assert s["baseline"] == {"seed": pytest.approx(1 / 3), "tuab": 0.5}  # balanced classes: chance
    assert before["tuab"] <= 0.5 and before["seed"] <= 0.5
    # chance (and the majority baseline) is 0.5 / 0.33; data seeds 0-2 reached 1.0 / 1.0, 1.0 / 1.0, 1.0 / 0.67
    assert acc["tuab"] >= 0.9 and acc["seed"] >= 0.6, acc
    assert s["final_train"]["loss_text"] > 0 and s["lineage"]["tasks_train"] == {"seed": 36, "tuab": 36}

    tuned = load_lm(s["outputs"]["model"])  # the save_lm layout evaluation loads
    info = json.loads(open(os.path.join(s["outputs"]["model"], "instruct.json")).read())
    assert info["positions"] == "own" and info["tasks"] == ["seed", "tuab"] and info["run_key"] == s["run_key"]
    first = load_lm(init)
    assert not torch.equal(tuned.lm_head.weight, first.lm_head.weight)
    assert os.path.getsize(s["files"]["curves"]) > 1000 and "answer accuracy" in open(s["files"]["report"]).read()
    again = tune(params(corpus, init, tmp_path / "o"))
    assert again["nothing_to_do"] and again["steps_done_now"] == 0 and again["run_dir"] == s["run_dir"]
    assert prepare(params(corpus, init, tmp_path / "o", positions="reference")).run_dir != s["run_dir"]
    assert prepare(params(corpus, init, tmp_path / "o", temperature=2.0)).run_dir != s["run_dir"]


def _inside_pretrain_run(tmp_path, init, **lineage) -> str:
    """A copy of ``init`` as RUN/model with a pretraining lineage.json beside it."""
    import shutil

    run = tmp_path / "pretrain-run"
    shutil.copytree(init, run / "model")
    (run / "lineage.json").write_text(json.dumps({"run_key": "abc", **lineage}))
    return str(run / "model")


def test_bad_inputs_are_refused_before_training(init, tmp_path):
    good = write_labeled_corpus(str(tmp_path / "good"), {"TUAB": 4})
    cases = [
        (dict(corpus=write_labeled_corpus(str(tmp_path / "t"), {"TUAB": 4}, tokenizer_config_hash="0" * 16)),
         ConfigError, "tokenizer config"),
        (dict(corpus=write_labeled_corpus(str(tmp_path / "k"), {"TUAB": 4}, info={"codebook_size": 8192,
                                                                                  "kind": "labeled"})),
         ConfigError, "8192 codes"),
        (dict(corpus=write_labeled_corpus(str(tmp_path / "v"), {"TUAB": 4}, vocab_version="other-v9")),
         ConfigError, "vocabulary"),
        (dict(corpus=write_labeled_corpus(str(tmp_path / "s"), {"TUAB": 4}, tokenizer_sha256="a" * 64),
              init=_inside_pretrain_run(tmp_path, init, tokenizer_sha256="b" * 64)),
         ConfigError, "pretrained with tokenizer checkpoint"),
        (dict(corpus=_rewrite(write_labeled_corpus(str(tmp_path / "nl"), {"TUAB": 4}), label=None)),
         TableValidationError, "missing column 'label'"),  # LABELED_MANIFEST, checked on read
        (dict(corpus=_rewrite(write_labeled_corpus(str(tmp_path / "ut"), {"TUAB": 4}), task="MNIST")),
         ConfigError, "unknown task 'MNIST'"),
        (dict(corpus=good, eeg_len=10), ConfigError, "holds 20 EEG tokens, more than the 10"),
        (dict(corpus=good, init=str(tmp_path)), StoreError, "not a neurolm model folder"),
        (dict(corpus=str(tmp_path / "nothing")), StoreError, "no token corpus"),
        (dict(corpus=good, batch_size=64), ConfigError, "fewer than one step"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            tune(params(kw.pop("corpus"), kw.pop("init", init), tmp_path / "o", **kw))
    assert not os.path.exists(tmp_path / "o")  # nothing was written for any of them
    with pytest.raises(ConfigError, match="positions"):
        TuneParams.build(corpus="c", init="i", out="o", positions="max")


def test_tuning_a_pretrained_run_checks_and_records_its_lineage(tmp_path):
    from test_pretrain_resume import short_corpus

    from neurolm.corpus.fixtures import save_random_tokenizer
    from neurolm.lm.config import lm_preset
    from neurolm.lm.params import PretrainParams
    from neurolm.lm.run import pretrain
    from storage.checkpoints import checkpoint_sha256

    tok = save_random_tokenizer(str(tmp_path / "tok"), "tiny", seed=0)
    pre = pretrain(PretrainParams(corpus=short_corpus(str(tmp_path / "pc")), tokenizer=tok, out=str(tmp_path / "pre"),
                                  config="tiny", steps=2, batch_size=2, text_batch_size=1, text_seq_len=16,
                                  max_len=32))
    sha = checkpoint_sha256(tok)
    assert pre["lineage"]["tokenizer_sha256"] == sha
    tok_hash = lm_preset("tiny").tokenizer.config_hash()
    same = write_labeled_corpus(str(tmp_path / "same"), {"TUAB": 4}, tokenizer_sha256=sha,
                                tokenizer_config_hash=tok_hash)
    s = tune(params(same, pre["outputs"]["model"], tmp_path / "o", steps=2, batch_size=2))
    assert s["lineage"]["pretrain"]["run_key"] == pre["run_key"] and s["lineage"]["init_sha256"]
    assert s["steps_done_now"] == 2
    other = write_labeled_corpus(str(tmp_path / "other"), {"TUAB": 4}, tokenizer_sha256="c" * 64,
                                 tokenizer_config_hash=tok_hash)
    with pytest.raises(ConfigError, match="pretrained with tokenizer checkpoint"):
        prepare(params(other, pre["outputs"]["model"], tmp_path / "o", batch_size=2))
