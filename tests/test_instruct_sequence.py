"""Instruction sequences (reference §4.1-4.2): loss mask per task, text positions, attention honoured."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolm.errors import ConfigError
from neurolm.instruct.sequence import EEG_MAX_LEN, TEXT_MAX_LEN, TaskTexts, build_batch, eeg_batch, text_positions
from neurolm.instruct.tasks import TASKS
from neurolm.lm.config import EOT_ID, SEP_ID, lm_preset
from neurolm.lm.model import NeuroLM
from neurolm.lm.text import load_gpt2_bpe


@pytest.fixture(scope="module")
def texts():
    return TaskTexts(load_gpt2_bpe("auto"))


def sample(n_ch: int, n_sec: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"codes": rng.integers(0, 64, n_ch * n_sec), "ch": np.tile(np.arange(n_ch), n_sec),
            "time": np.repeat(np.arange(n_sec), n_ch)}


# the pieces the original supervises for label 0, typed from reference §4.2 (TUEV/HMC also " (")
SUPERVISED_LABEL0 = {
    "tuab": [" No", " ", "<|endoftext|>"],
    "tuev": [" (", "A", ")", " ", "<|endoftext|>"],
    "seed": [" Positive", " ", "<|endoftext|>"],
    "hmc": [" (", "A", ")", " ", "<|endoftext|>"],
    "workload": [" No", " ", "<|endoftext|>"],
    "tusl": ["A", ")", " ", "<|endoftext|>"],
}


@pytest.mark.parametrize("name", list(TASKS))
def test_targets_are_the_supervised_answer_tokens_only(texts, name):
    tok = load_gpt2_bpe("auto")
    b = build_batch([sample(4, 3)], [(TASKS[name].label_task, 0)], texts)
    ids, y = b["text"][0], b["text_targets"][0]
    assert b["text"].shape == (1, TEXT_MAX_LEN) and b["codes"].shape == (1, EEG_MAX_LEN)
    assert ids[0] == SEP_ID
    n = int((ids != EOT_ID).sum()) + 1  # real tokens: the first EOT ends the text, the rest is padding
    assert (ids[n:] == EOT_ID).all()
    where = torch.nonzero(y != -1).flatten().tolist()
    assert where == list(range(where[0], n - 1))  # one contiguous run that ends predicting the EOT
    assert [tok.decode([int(t)]) for t in y[where]] == SUPERVISED_LABEL0[name]
    assert torch.equal(y[where], ids[[i + 1 for i in where]])  # next-token targets
    assert "targets" not in b  # no EEG loss


def test_a_window_longer_than_276_tokens_is_refused_with_its_size(texts):
    with pytest.raises(ConfigError, match="277 tokens"):
        eeg_batch([sample(1, 277)])
    with pytest.raises(ConfigError, match="outside"):
        build_batch([sample(2, 2)], [("TUAB", 2)], texts)
    with pytest.raises(ConfigError, match="unknown task"):
        build_batch([sample(2, 2)], [("MNIST", 0)], texts)


def test_text_positions_own_and_reference():
    b = eeg_batch([sample(3, 4), sample(2, 7), sample(5, 1)], eeg_len=20)
    own = text_positions(b["time"], b["mask"], 3, "own")
    ref = text_positions(b["time"], b["mask"], 3, "reference")
    assert own.tolist() == [[4, 5, 6], [7, 8, 9], [1, 2, 3]]
    assert ref.tolist() == [[7, 8, 9]] * 3
    with pytest.raises(ConfigError, match="own"):
        text_positions(b["time"], b["mask"], 3, "max")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = NeuroLM(lm_preset("tiny"), chan_init_std=0.02)
    m.set_codebook(torch.randn_like(m.codebook))
    return m.eval()


def _text_logits(model, b, positions="own"):
    with torch.no_grad():
        return model.forward_eeg_text(b, b["text"], positions)[:, b["codes"].shape[1]:]


def test_the_attention_mask_is_honoured(model, texts):
    b = build_batch([sample(3, 4, 1), sample(3, 2, 2)], [("TUAB", 1), ("HMC", 3)], texts, eeg_len=16)
    base = _text_logits(model, b)

    padded = {k: v.clone() for k, v in b.items()}  # row 1 holds 6 valid EEG tokens; change its padding
    padded["codes"][1, 6:] = 7
    padded["ch"][1, 6:] = 2
    padded["time"][1, 6:] = 0
    assert torch.allclose(_text_logits(model, padded), base, atol=1e-5)

    later = {k: v.clone() for k, v in b.items()}  # a later text token: earlier text positions unchanged
    j = 10
    later["text"][:, j] = 1000
    out = _text_logits(model, later)
    assert torch.allclose(out[:, :j], base[:, :j], atol=1e-5)
    assert not torch.allclose(out[:, j], base[:, j], atol=1e-3)

    valid = {k: v.clone() for k, v in b.items()}  # a valid EEG token does reach the text (the test can fail)
    valid["codes"][1, 0] = (int(valid["codes"][1, 0]) + 1) % 64
    out = _text_logits(model, valid)
    assert torch.allclose(out[0], base[0], atol=1e-5) and not torch.allclose(out[1], base[1], atol=1e-4)


def test_reference_positions_make_a_row_depend_on_its_batch(model, texts):
    short, long_ = sample(3, 2, 3), sample(3, 4, 4)
    alone = build_batch([short], [("SEED", 2)], texts, eeg_len=12)
    mixed = build_batch([short, long_], [("SEED", 2), ("SEED", 0)], texts, eeg_len=12)
    own_alone, own_mixed = _text_logits(model, alone, "own"), _text_logits(model, mixed, "own")
    assert torch.allclose(own_alone[0], own_mixed[0], atol=1e-5)
    ref_alone, ref_mixed = _text_logits(model, alone, "reference"), _text_logits(model, mixed, "reference")
    assert torch.allclose(ref_alone[0], own_alone[0], atol=1e-5)  # alone, its own maximum is the batch's
    assert not torch.allclose(ref_mixed[0], ref_alone[0], atol=1e-4)
