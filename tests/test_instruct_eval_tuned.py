"""Evaluation of a model that really learnt: tuned on CPU (the tuning run calls `evaluate_model` at its end)."""

from __future__ import annotations

import json
import os

import torch

from neurolm.instruct.fixtures import save_untrained_model, write_labeled_corpus
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import tune


def test_tuned_model_scores_its_answers_and_the_run_reports_them(tmp_path):
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    corpus = write_labeled_corpus(str(tmp_path / "c"), {"TUAB": 24, "SEED": 16}, band=2)
    init = save_untrained_model(str(tmp_path / "init"))
    s = tune(TuneParams(corpus=corpus, init=init, out=str(tmp_path / "o"), steps=40, batch_size=16,
                        text_batch_size=1, text_seq_len=32, lr=1e-2, eeg_len=32, evaluate=True))
    ev = s["evaluation"]
    rows = {(r["task"], r["split"]): r for r in ev["results"]}
    assert set(rows) == {("tuab", "val"), ("seed", "val")}  # the corpus has no test split
    taught = s["val"]["answer_accuracy_per_task"]
    for name, floor in (("tuab", 0.9), ("seed", 0.75)):
        r = rows[(name, "val")]
        assert r["n"] == {"tuab": 12, "seed": 12}[name]
        # the option the model finds most likely is right at least whenever its teacher-forced answer
        # (every supervised token the argmax of all logits) is: options are a subset of the logits
        assert r["accuracy"] >= taught[name] - 1e-9 and r["balanced_accuracy"] >= floor, (name, r, taught)
        # greedy generation (5 tokens, correct mask) answers in the trained words, parsed by the original's rule
        assert r["unparsable"] == 0 and r["gen_balanced_accuracy"] >= floor
    assert rows[("tuab", "val")]["roc_auc"] >= 0.9
    with open(ev["files"]["results_json"], encoding="utf-8") as f:
        assert json.load(f)["results"][0]["task"] == "tuab"
    assert ev["out"] == os.path.join(s["run_dir"], "evaluation", ev["corpus_version"])  # as `neurolm evaluate`
    card = open(os.path.join(s["model_dir"], "README.md"), encoding="utf-8").read()
    r = rows[("tuab", "val")]
    assert f"| TUAB | val | {r['n']} | {r['balanced_accuracy']:.4f} |" in card  # the card shows this evaluation
