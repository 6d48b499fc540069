"""Model directories: the backbone is a stock transformers checkpoint, the rest reloads exactly."""

from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import GPT2Model

from neurolm.errors import ConfigError, StoreError
from neurolm.lm.config import lm_preset
from neurolm.lm.io import EXTRA_FILE, load_lm, save_lm
from neurolm.lm.model import NeuroLM
from neurolm.lm.synthetic import random_eeg_batch


@pytest.mark.parametrize("mode", ["codes", "features"])
def test_save_reload_is_exact(tmp_path, mode):
    torch.manual_seed(0)
    cfg = lm_preset("tiny", input_mode=mode)
    model = NeuroLM(cfg).eval()
    if mode == "codes":
        model.set_codebook(torch.randn(cfg.codebook_size, cfg.tokenizer.code_dim))
    with torch.no_grad():  # make every part differ from a fresh init
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    d = save_lm(model, str(tmp_path / "m"))
    back = load_lm(d)
    assert back.config == cfg
    sd0, sd1 = model.state_dict(), back.state_dict()
    assert sd0.keys() == sd1.keys()
    assert all(torch.equal(sd0[k], sd1[k]) for k in sd0)
    b = random_eeg_batch(cfg, batch=2, n_ch=3, n_sec=3, length=10, n_valid=[3, 2])
    with torch.no_grad():
        assert torch.equal(model.forward_eeg(b), back.forward_eeg(b))


def test_backbone_loads_with_plain_transformers(tmp_path):
    torch.manual_seed(1)
    model = NeuroLM(lm_preset("tiny")).eval()
    d = save_lm(model, str(tmp_path / "m"))
    gpt = GPT2Model.from_pretrained(d).eval()
    assert gpt.config.vocab_size == 50304 and gpt.config.activation_function == "gelu"
    ids = torch.randint(0, 50304, (1, 7))
    with torch.no_grad():
        ours = model.gpt(input_ids=ids).last_hidden_state
        theirs = gpt(input_ids=ids).last_hidden_state
    assert torch.equal(ours, theirs)
    assert json.load(open(os.path.join(d, "neurolm_config.json")))["config_hash"] == model.config.config_hash()


def test_foreign_or_tampered_directories_are_refused(tmp_path):
    with pytest.raises(StoreError):
        load_lm(str(tmp_path))
    model = NeuroLM(lm_preset("tiny"))
    d = save_lm(model, str(tmp_path / "m"))
    from safetensors.torch import load_file, save_file

    w = load_file(os.path.join(d, EXTRA_FILE))
    save_file(w, os.path.join(d, EXTRA_FILE), metadata={"format": "something-else"})
    with pytest.raises(ConfigError):
        load_lm(d)
