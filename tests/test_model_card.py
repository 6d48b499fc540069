"""The tuned model folder's README.md model card: written from the run's records, rewritten by evaluation."""

from __future__ import annotations

import json
import os

import torch

from neurolm.instruct.evaluate import evaluate
from neurolm.instruct.eval_params import EvaluateParams
from neurolm.instruct.fixtures import save_untrained_model, write_labeled_corpus
from neurolm.instruct.model_card import CARD_FILE, write_model_card
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import init_config, tune


def _table_line(card: str, task: str, split: str) -> str:
    prefix = f"| {task.upper()} | {split} |"
    lines = [ln for ln in card.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, (prefix, lines)
    return lines[0]


def test_card_says_what_the_run_recorded_and_evaluation_fills_the_table(tmp_path):
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    corpus = write_labeled_corpus(str(tmp_path / "c"), {"TUAB": 8, "SEED": 8}, band=2)
    init = save_untrained_model(str(tmp_path / "init"))
    s = tune(TuneParams(corpus=corpus, init=init, out=str(tmp_path / "o"), steps=4, batch_size=4,
                        text_batch_size=1, text_seq_len=16, eeg_len=32, evaluate=False))
    run_dir, model_dir = s["run_dir"], s["model_dir"]
    _, sha_before = init_config(model_dir)
    with open(os.path.join(run_dir, "lineage.json"), encoding="utf-8") as f:
        lineage = json.load(f)

    card_path = os.path.join(model_dir, CARD_FILE)
    card = open(card_path, encoding="utf-8").read()  # written by the tuning run when it ended
    assert card == open(write_model_card(run_dir), encoding="utf-8").read()  # from the run's records only
    assert "Not evaluated yet" in card
    assert lineage["corpus_version"] in card and lineage["init_sha256"][:16] in card
    assert lineage["tokenizer_sha256"][:16] in card and lineage["vocab_version"] in card
    counts = ", ".join(f"{t.upper()} {n} / {lineage['tasks_val'].get(t, 0)}"
                       for t, n in sorted(lineage["tasks_train"].items()))
    assert counts in card
    assert f"{s['steps']} steps" in card and "Not a medical device" in card
    assert "causal across seconds" in card  # the tiny tokenizer's default encoder attention is a deviation, said

    ev = evaluate(EvaluateParams(models=(model_dir,), corpus=corpus, splits=("val",), metrics="reference"))
    assert ev["model_cards"] == [os.path.join(model_dir, CARD_FILE)]
    card = open(ev["model_cards"][0], encoding="utf-8").read()
    assert "Not evaluated yet" not in card and ev["corpus_version"] in card and "original's way" in card
    with open(ev["files"]["results_json"], encoding="utf-8") as f:
        results = json.load(f)["results"]
    assert {r["task"] for r in results} == {"tuab", "seed"}
    for r in results:
        cells = [c.strip() for c in _table_line(card, r["task"], r["split"]).strip("|").split("|")]
        assert cells[2:] == [str(r["n"]), f"{r['balanced_accuracy']:.4f}", f"{r['gen_balanced_accuracy']:.4f}",
                             str(r["unparsable"])]

    _, sha_after = init_config(model_dir)
    assert sha_after == sha_before  # the card is not part of the model's hash: no lineage key changes
    from transformers import GPT2Model

    GPT2Model.from_pretrained(model_dir)  # the folder still loads as a transformers model


def test_a_model_folder_that_is_not_a_tuning_run_gets_no_card(tmp_path):
    from neurolm.instruct.evaluate import refresh_model_cards

    init = save_untrained_model(str(tmp_path / "init"))
    assert refresh_model_cards([init]) == []
    assert not os.path.exists(os.path.join(init, CARD_FILE))
