"""Evaluation: option scoring, the generation mask, honest vs the original's metrics, unparsable answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neurolm.corpus.reader import collate_tokens
from neurolm.errors import ConfigError
from neurolm.instruct.generate import TEXT_LOGITS, greedy_generate, text_logits_at
from neurolm.instruct.metrics import generation_metrics, option_metrics, reference_metrics
from neurolm.instruct.scoring import answer_options, option_probabilities, score_options
from neurolm.instruct.tasks import TASKS, eval_ids
from neurolm.lm.config import lm_preset
from neurolm.lm.model import NeuroLM
from neurolm.lm.text import load_gpt2_bpe


@pytest.fixture(scope="module")
def tok():
    return load_gpt2_bpe("auto")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = NeuroLM(lm_preset("tiny"), chan_init_std=0.02)
    m.set_codebook(torch.nn.functional.normalize(torch.randn_like(m.codebook), dim=-1))
    return m.eval()


def eeg(lengths=((4, 3), (4, 5)), seed=0):
    """A padded EEG batch of windows with (n_ch, n_sec) each (rows of different lengths)."""
    rng = np.random.default_rng(seed)
    samples = [{"codes": rng.integers(0, 512, c * s), "ch": np.tile(np.arange(c), s),
                "time": np.repeat(np.arange(s), c)} for c, s in lengths]
    b = collate_tokens(samples, max_len=max(c * s for c, s in lengths))
    b.pop("targets")
    return b


def test_text_logits_equal_forward_eeg_text(model, tok):
    b = eeg()
    ids = torch.tensor(eval_ids(TASKS["hmc"], tok)).expand(2, -1)
    with torch.no_grad():
        full = model.forward_eeg_text(b, ids)[:, b["time"].shape[1]:, :TEXT_LOGITS]
        mine = text_logits_at(model, b, ids)
    torch.testing.assert_close(mine, full, rtol=1e-5, atol=1e-5)


def test_answer_options_are_the_trained_tokens(tok):
    decoded = {name: [tok.decode(o) for o in answer_options(t, tok)] for name, t in TASKS.items()}
    assert decoded["tuab"] == [" No", " Yes"] and decoded["seed"] == [" Positive", " Neutral", " Negative"]
    assert decoded["hmc"] == ["A)", "B)", "C)", "D)", "E)"] and decoded["tusl"] == ["A)", "B)", "C)"]
    # an evaluation prompt that ends in a space: " Yes" is one token in training, so the prompt's own
    # tokens change and no generation from it could produce the trained answer
    broken = dataclasses.replace(TASKS["tuab"], eval_suffix=" ")
    with pytest.raises(ConfigError, match="changes the tokens of the prompt"):
        answer_options(broken, tok)


@pytest.mark.parametrize("name", ["tuab", "hmc"])
def test_option_scores_are_each_sequence_log_likelihood(model, tok, name):
    task = TASKS[name]
    b = eeg(((4, 3), (4, 6), (2, 2)))
    prompt, options = eval_ids(task, tok), answer_options(task, tok)
    ll = score_options(model, b, prompt, options)
    assert ll.shape == (3, task.n_classes)
    for r in range(3):
        row = {k: v[r: r + 1] for k, v in b.items()}
        n = int(row["mask"].sum())
        row = {k: v[:, :n] for k, v in row.items()}  # unpadded: a different path than the batched scorer
        for k, opt in enumerate(options):
            ids = torch.tensor([prompt + opt])
            with torch.no_grad():
                lp = torch.log_softmax(model.forward_eeg_text(row, ids)[0, n:, :TEXT_LOGITS], dim=-1)
            want = sum(float(lp[len(prompt) - 1 + j, t]) for j, t in enumerate(opt))
            assert float(ll[r, k]) == pytest.approx(want, abs=1e-4)
    probs = option_probabilities(ll)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3, dtype=probs.dtype))


def test_a_model_set_to_prefer_yes_scores_it_highest(tok):
    torch.manual_seed(1)
    m = NeuroLM(lm_preset("tiny")).eval()
    yes = tok.encode(" Yes")[0]
    with torch.no_grad():  # the final LayerNorm outputs a constant vector e; only " Yes" aligns with it
        e = torch.randn(m.config.n_embd)
        m.gpt.ln_f.weight.zero_()
        m.gpt.ln_f.bias.copy_(e)
        m.lm_head.weight.mul_(0.01)
        m.lm_head.weight[yes] = 10 * e / e.dot(e)
    for name in ("tuab", "workload"):
        p = option_probabilities(score_options(m, eeg(), eval_ids(TASKS[name], tok), answer_options(TASKS[name], tok)))
        assert (p[:, 1] > 0.99).all()
    gen, _ = greedy_generate(m, eeg(), eval_ids(TASKS["tuab"], tok))
    assert (gen == yes).all()


def test_generation_never_sees_padded_eeg(model, tok):
    prompt = eval_ids(TASKS["hmc"], tok)
    b = eeg(((4, 2), (4, 6)))
    ids, logits = greedy_generate(model, b, prompt)
    assert ids.shape == (2, 5) and logits.shape == (2, 5, TEXT_LOGITS)
    pad = ~b["mask"][0]
    assert pad.any()
    c = {k: v.clone() for k, v in b.items()}
    c["codes"][0, pad] = 511 - c["codes"][0, pad]  # other codes, channels and seconds at the padded slots
    c["ch"][0, pad] = 7
    c["time"][0, pad] = 0
    ids2, logits2 = greedy_generate(model, c, prompt)
    assert torch.equal(ids2, ids)
    torch.testing.assert_close(logits2, logits, rtol=0, atol=1e-5)
    # ... and the same as the window alone, without any padding
    n = int(b["mask"][0].sum())
    alone = {k: v[:1, :n] for k, v in b.items()}
    ids3, logits3 = greedy_generate(model, alone, prompt)
    assert torch.equal(ids3[0], ids[0])
    torch.testing.assert_close(logits3[0], logits[0], rtol=1e-5, atol=1e-5)
    # the original's text positions (the batch's last second + 1) make the short row's answer depend on
    # its batch: its logits differ from those it gets alone
    _, logits_ref = greedy_generate(model, b, prompt, positions="reference")
    assert not torch.allclose(logits_ref[0], logits3[0], atol=1e-3)
    # each step is the argmax of the full forward over prompt + what was generated before it
    seq = torch.tensor([prompt + ids[1].tolist()])
    row = {k: v[1:2] for k, v in b.items()}
    with torch.no_grad():
        full = model.forward_eeg_text(row, seq)[0, b["time"].shape[1]:, :TEXT_LOGITS]
    for j in range(5):
        assert int(full[len(prompt) - 1 + j].argmax()) == int(ids[1, j])


def test_honest_and_reference_differ_on_soft_scores():
    y = [0, 0, 1, 1]
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9]])
    honest = option_metrics(y, probs, "binary")
    # argmax predictions 0,1,0,1: BAcc 0.5; ranking: 3 of the 4 (positive, negative) pairs are ordered
    assert honest["balanced_accuracy"] == pytest.approx(0.5) and honest["roc_auc"] == pytest.approx(0.75)
    ref = reference_metrics(y, [0, 1, 0, 1], 2, "binary")
    # the original scores the hard label: AUROC equals balanced accuracy
    assert ref["ref_roc_auc"] == pytest.approx(0.5) and ref["ref_balanced_accuracy"] == pytest.approx(0.5)


def test_unparsable_is_wrong_honestly_and_the_last_class_in_the_reference():
    y = [0, 1, 2, 2]
    parsed = [0, None, 2, None]
    g = generation_metrics(y, parsed, 3)
    assert g["unparsable"] == 2
    assert g["gen_accuracy"] == pytest.approx(2 / 4)
    assert g["gen_balanced_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    ref = reference_metrics(y, parsed, 3, "multiclass")
    # the original: unparsable → class 2, so the sample of class 2 that was unparsable counts as right
    assert ref["ref_accuracy"] == pytest.approx(3 / 4)
    assert ref["ref_balanced_accuracy"] == pytest.approx((1 + 0 + 1) / 3)
    # binary: −1 thresholded at 0.5 is class 0
    refb = reference_metrics([0, 1, 1], [None, 1, None], 2, "binary")
    assert refb["ref_accuracy"] == pytest.approx(2 / 3)
    assert generation_metrics([0, 1, 1], [None, 1, None], 2)["gen_accuracy"] == pytest.approx(1 / 3)


def test_auroc_with_one_class_is_nan_not_a_number_made_up():
    out = option_metrics([1, 1], np.array([[0.2, 0.8], [0.6, 0.4]]), "binary")
    assert np.isnan(out["roc_auc"]) and out["accuracy"] == pytest.approx(0.5)


def test_a_perfect_ranking_scores_one_not_a_rounding_step_above():
    """sklearn's average precision of this perfect ranking is 1.0000000000000002; the RESULTS schema (range
    [-1, 1]) refused it and failed the demo build once its model answered every TUAB test window right."""
    y = [1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 1]
    s = [1.096, 0.488, 1.054, 0.226, 0.197, 0.116, 0.374, 1.322, 1.363, 0.041, 1.176, 1.26, 0.213, 1.02, 0.097,
         0.473, 0.081, 1.426, 0.411, 0.196, 1.233]
    p1 = np.asarray(s) / 1.5
    m = option_metrics(y, np.stack([1 - p1, p1], axis=1), "binary")
    assert m["pr_auc"] == 1.0 and m["roc_auc"] == 1.0 and m["balanced_accuracy"] == 1.0


def test_positions_follow_the_tuned_model_unless_given(tmp_path):
    import json

    from neurolm.instruct.evaluate import tuned_positions

    assert tuned_positions(str(tmp_path)) == "own"  # no instruct.json: each row's own positions
    (tmp_path / "instruct.json").write_text(json.dumps({"kind": "neurolm-instruct", "positions": "reference"}))
    assert tuned_positions(str(tmp_path)) == "reference"
    assert tuned_positions(str(tmp_path), "own") == "own"
