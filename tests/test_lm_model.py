"""The stage-2 model: sizes, targets, loss, and the stair mask honoured by every attention implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolm.corpus.reader import collate_tokens
from neurolm.errors import ConfigError
from neurolm.lm.config import lm_preset
from neurolm.lm.model import NeuroLM, count_parameters, trainable_parameters
from neurolm.lm.synthetic import random_eeg_batch
from neurolm.lm.targets import code_logit_targets, lm_loss, next_second_codes
from neurolm.tokenizer.config import preset as tokenizer_preset

ATTN = ("sdpa", "eager")


def tiny(mode="codes", attn="sdpa", **kw):
    torch.manual_seed(0)
    cfg = lm_preset("tiny", input_mode=mode, attn_implementation=attn, **kw)
    model = NeuroLM(cfg).eval()
    if mode == "codes":
        cb = torch.randn(cfg.codebook_size, cfg.tokenizer.code_dim)
        model.set_codebook(torch.nn.functional.normalize(cb, dim=-1))
    return model


# -- sizes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,millions", [("B", 254.3), ("L", 500.3), ("XL", 1736.8)])
def test_published_parameter_counts(name, millions):
    """Reference §3.1: counts without wpe, including the frozen 85.5 M encoder (features mode)."""
    cfg = lm_preset(name, input_mode="features", tokenizer=tokenizer_preset("base", encoder_attention="full"))
    assert round(count_parameters(cfg) / 1e6, 1) == millions
    encoder = count_parameters(cfg) - count_parameters(cfg, encoder=False)
    assert round(encoder / 1e6, 1) == 85.5


def test_vocabulary_layout_and_frozen_parts():
    m = tiny("features")
    cfg = m.config
    assert m.gpt.wte.weight.shape == (50304, 64)
    assert m.lm_head.weight.shape == (50304 + cfg.codebook_size, 64)
    assert m.lm_head.weight.data_ptr() != m.gpt.wte.weight.data_ptr()
    assert m.gpt.config.activation_function == "gelu"
    assert not any(p.requires_grad for p in m.tokenizer.parameters())
    m.train()
    assert not m.tokenizer.training
    assert trainable_parameters(m) == sum(p.numel() for n, p in m.named_parameters() if not n.startswith("tokenizer."))


# -- targets -----------------------------------------------------------------------------------
def reference_targets(codes: np.ndarray, n_ch: int, n_valid: int, length: int) -> np.ndarray:
    """Y[i] = c[i + n_ch] for i < n_tokens - n_ch, else -1 (reference §3.3), written as a loop."""
    y = np.full(length, -1)
    for i in range(n_valid - n_ch):
        y[i] = codes[i + n_ch]
    return y


def test_targets_match_reference_and_corpus_collate():
    cfg = lm_preset("tiny")
    b = random_eeg_batch(cfg, batch=3, n_ch=4, n_sec=5, length=24, n_valid=[5, 3, 1], seed=1)
    got = next_second_codes(b["codes"], b["ch"], b["time"], b["mask"])
    for r, s in enumerate([5, 3, 1]):
        assert got[r].tolist() == reference_targets(b["codes"][r].numpy(), 4, 4 * s, 24).tolist()
    samples = [{k: b[k][r, : 4 * s].numpy() for k in ("codes", "ch", "time")} for r, s in enumerate([5, 3, 1])]
    assert torch.equal(collate_tokens(samples, max_len=24)["targets"], got)


def test_targets_follow_channel_identity_and_never_padding():
    codes = torch.tensor([[10, 11, 12, 20, 22, 0, 0]])
    ch = torch.tensor([[5, 6, 7, 5, 7, 136, 136]])  # channel 6 missing in second 1
    time = torch.tensor([[0, 0, 0, 1, 1, 0, 0]])
    valid = torch.tensor([[1, 1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    got = next_second_codes(codes, ch, time, valid)
    assert got.tolist() == [[20, -1, 22, -1, -1, -1, -1]]
    assert code_logit_targets(got, 50304).tolist() == [[50324, -1, 50326, -1, -1, -1, -1]]


def test_loss_is_cross_entropy_over_all_logits_ignoring_minus_one():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 58496, generator=g)
    t = torch.tensor([[50304 + 7, -1, 3], [-1, -1, 58495]])
    sel = t >= 0
    want = -torch.log_softmax(logits[sel], -1).gather(1, t[sel][:, None]).mean()
    assert torch.allclose(lm_loss(logits, t), want, atol=1e-5)
    assert lm_loss(logits, torch.full_like(t, -1)).item() == 0.0


# -- the mask is honoured ------------------------------------------------------------------------
@pytest.mark.parametrize("attn", ATTN)
@pytest.mark.parametrize("mode", ["codes", "features"])
def test_invisible_tokens_do_not_move_earlier_outputs(attn, mode):
    """Perturbing second 2 leaves seconds 0-1 exactly unchanged; padding changes no valid output."""
    m = tiny(mode, attn)
    b = random_eeg_batch(m.config, batch=2, n_ch=3, n_sec=4, length=16, n_valid=[4, 3], seed=2)
    with torch.no_grad():
        base = m.forward_eeg(b)
        fut = {k: v.clone() for k, v in b.items()}
        sel = fut["time"][0] == 2
        fut["codes"][0, sel] = (fut["codes"][0, sel] + 17) % m.config.codebook_size
        fut["x"][0, sel] += 3.0
        out = m.forward_eeg(fut)
        early = b["time"][0] < 2
        assert torch.equal(out[0, early], base[0, early])
        assert not torch.allclose(out[0, ~early & b["mask"][0]], base[0, ~early & b["mask"][0]])  # visible later on
        assert torch.equal(out[1], base[1])  # other rows untouched

        pad = {k: v.clone() for k, v in b.items()}
        p = ~pad["mask"]
        pad["codes"][p] = 5
        pad["ch"][p] = 3
        pad["time"][p] = 1
        pad["x"][p] = 7.0
        out = m.forward_eeg(pad)
        assert torch.equal(out[b["mask"]], base[b["mask"]])
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("attn", ATTN)
def test_channels_of_one_second_see_each_other(attn):
    """The mask is not over-restrictive: a later channel of the same second moves an earlier one."""
    m = tiny("codes", attn)
    b = random_eeg_batch(m.config, batch=1, n_ch=3, n_sec=2, seed=3)
    with torch.no_grad():
        base = m.forward_eeg(b)
        b2 = {k: v.clone() for k, v in b.items()}
        b2["codes"][0, 2] = (b2["codes"][0, 2] + 1) % m.config.codebook_size
        out = m.forward_eeg(b2)
    assert not torch.allclose(out[0, 0], base[0, 0])


@pytest.mark.parametrize("attn", ATTN)
def test_text_is_causal(attn):
    m = tiny("codes", attn)
    ids = torch.randint(0, 50257, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base = m.forward_text(ids)
        ids2 = ids.clone()
        ids2[0, 6] = (ids2[0, 6] + 1) % 50257
        out = m.forward_text(ids2)
    assert torch.equal(out[0, :6], base[0, :6])
    assert not torch.allclose(out[0, 6:], base[0, 6:])


@pytest.mark.parametrize("attn", ATTN)
def test_text_after_eeg_sees_eeg_but_not_the_reverse(attn):
    m = tiny("codes", attn)
    b = random_eeg_batch(m.config, batch=1, n_ch=2, n_sec=3, length=8, seed=4)
    ids = torch.randint(0, 50257, (1, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = m.forward_eeg_text(b, ids)
        ids2 = ids.clone()
        ids2[0, 0] += 1
        out = m.forward_eeg_text(b, ids2)
    assert torch.equal(out[0, :8], base[0, :8])  # EEG (and its padding) never sees text
    assert not torch.allclose(out[0, 8:], base[0, 8:])


def test_sdpa_and_eager_agree():
    b = random_eeg_batch(lm_preset("tiny"), batch=2, n_ch=3, n_sec=3, length=12, n_valid=[3, 2], seed=5)
    with torch.no_grad():
        a = tiny("codes", "sdpa").forward_eeg(b)
        e = tiny("codes", "eager").forward_eeg(b)
    assert torch.allclose(a[b["mask"]], e[b["mask"]], atol=1e-4)


def test_positions_beyond_the_table_are_refused():
    m = tiny("codes", block_size=4)
    b = random_eeg_batch(m.config, batch=1, n_ch=2, n_sec=5, seed=0)
    with pytest.raises(ConfigError, match="position table"):
        m.forward_eeg(b)


def test_gradients_reach_trainable_parts_only():
    m = tiny("codes").train()
    b = random_eeg_batch(m.config, batch=2, n_ch=3, n_sec=3, seed=6)
    y = code_logit_targets(next_second_codes(b["codes"], b["ch"], b["time"], b["mask"]), 50304)
    lm_loss(m.forward_eeg(b), y).backward()
    assert m.code_proj.weight.grad is not None and m.chan_embed.weight.grad is not None
    assert m.gpt.h[0].attn.c_attn.weight.grad.abs().sum() > 0
    assert not m.codebook.requires_grad


def test_one_forward_call_gives_both_losses_with_equal_weight():
    m = tiny("codes")
    b = random_eeg_batch(m.config, batch=2, n_ch=3, n_sec=3, seed=7)
    b["targets"] = next_second_codes(b["codes"], b["ch"], b["time"], b["mask"])
    ids = torch.randint(0, 50257, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = m(b, (ids[:, :-1], ids[:, 1:]))
        want_eeg = lm_loss(m.forward_eeg(b), code_logit_targets(b["targets"], 50304))
        want_text = lm_loss(m.forward_text(ids[:, :-1]), ids[:, 1:])
    assert torch.allclose(out["loss_eeg"], want_eeg, atol=1e-6) and torch.equal(out["loss_text"], want_text)
    assert torch.equal(out["loss"], out["loss_eeg"] + want_text)
    sel = b["targets"] >= 0
    assert torch.equal(out["targets_eeg"], b["targets"][sel] + 50304)
    with torch.no_grad():
        assert torch.allclose(out["logits_eeg"], m.forward_eeg(b)[sel], atol=1e-5)
    assert set(m(b)) == {"loss", "loss_eeg", "logits_eeg", "targets_eeg"}
    with pytest.raises(ValueError):
        m()
