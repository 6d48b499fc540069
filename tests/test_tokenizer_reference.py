"""Imported original weights reproduce the original's encoder features and codes.

``reference_vq`` is an independent functional re-typing of the original encode path
(no neurolm imports). A random state dict in the original's layout, saved as the
original resume dict (``model`` with some ``_orig_mod.`` keys, ``encoder_args``/
``decoder_args``), goes through our real importer; features and codes must agree on
padded and unpadded samples. Small sizes, same code path as ``base``.
"""

from __future__ import annotations

import pytest
import torch
from reference_vq import ORIG_PREFIX, codebook_indices, encoder_features, original_state_dict, strip_orig_mod

from neurolm.errors import ConfigError
from neurolm.tokenizer import import_published, load_tokenizer

# n_head=4 at width 48: the old width heuristic would have guessed 12 heads
ENC = dict(n_layer=2, n_head=4, n_embd=48, block_size=32, bias=False, dropout=0.0, num_classes=0, in_chans=1,
           out_chans=8)
DEC = dict(n_layer=1, n_head=4, n_embd=48, block_size=32, bias=False, dropout=0.0, num_classes=0, in_chans=16)
K, D = 64, 16
PAD_CH = 136


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def original():
    return original_state_dict(ENC, DEC, codebook_size=K, code_dim=D, seed=3)


def _save(path, sd, **args):
    """The original resume dict; every other key carries torch.compile's prefix."""
    model = {(ORIG_PREFIX + k if i % 2 else k): v for i, (k, v) in enumerate(sd.items())}
    torch.save({"model": model, "optimizer": {"state": {}, "param_groups": []}, **args, "iter_num": 7, "epoch": 0},
               path)
    return str(path)


def _samples(layout: list[tuple[int, int]], length: int, seed: int = 0):
    """(n_ch, n_sec) per sample → x [B, L, 200], ch, time, mask; time-major, zero padding, pad channel 136."""
    g = torch.Generator().manual_seed(seed)
    b = len(layout)
    x = torch.zeros(b, length, 200)
    ch = torch.full((b, length), PAD_CH, dtype=torch.long)
    time = torch.zeros(b, length, dtype=torch.long)
    mask = torch.zeros(b, length, dtype=torch.bool)
    for i, (n_ch, n_sec) in enumerate(layout):
        n = n_ch * n_sec
        x[i, :n] = 2.0 * torch.randn(n, 200, generator=g) + torch.randn(n, 1, generator=g)
        ch[i, :n] = torch.randperm(130, generator=g)[:n_ch].repeat(n_sec)
        time[i, :n] = torch.arange(n_sec).repeat_interleave(n_ch)
        mask[i, :n] = True
    return x, ch, time, mask


def _reference(sd, batch):
    feats = encoder_features(sd, ENC, *batch)
    return feats, codebook_indices(sd, feats)


def _assert_same(model, sd, batch):
    feats = model.encode_features(*batch)
    codes = model.encode_codes(*batch)
    ref_feats, ref_codes = _reference(sd, batch)
    torch.testing.assert_close(feats, ref_feats, atol=2e-5, rtol=1e-5)
    mask = batch[3]
    assert torch.equal(codes[mask], ref_codes[mask])
    assert (codes[~mask] == -1).all()
    return feats, codes


@pytest.mark.parametrize("args", ["encoder_args/decoder_args", "model_args"])
def test_imported_weights_match_the_reference_forward(tmp_path, original, args):
    stored = {"encoder_args": ENC, "decoder_args": DEC} if args.startswith("encoder") else {"model_args": ENC}
    path = _save(tmp_path / "VQ.pt", original, **stored)
    model, report = import_published(path)
    cfg = model.config
    assert (cfg.n_heads, cfg.d_model, cfg.n_enc_layers, cfg.n_dec_layers) == (4, 48, 2, 1)
    assert (cfg.encoder_attention, cfg.conv_norm, cfg.max_tokens) == ("full", "reference", 32)
    assert report.missing == () and report.unexpected == ()
    assert set(report.ignored) == {"wte.weight", "VQ.quantize.cluster_size"}
    sd = strip_orig_mod(torch.load(path, weights_only=True)["model"])

    padded = _samples([(4, 8), (4, 5), (3, 3)], 32)  # 0, 12 and 23 padding tokens
    feats, codes = _assert_same(model, sd, padded)
    assert len(set(codes[padded[3]].tolist())) > 8  # the codes are not a constant that would always agree
    # the same sample without its padding: the reference's features change (GroupNorm saw the padding) ...
    alone = tuple(t[1:2, :20] for t in padded)
    alone_feats, _ = _assert_same(model, sd, alone)
    assert (alone_feats[0] - feats[1, :20]).abs().max() > 1e-3
    # ... which is what the padding-free norm would have got wrong before: it matches only without padding
    free, _ = import_published(path, conv_norm="valid-patches")
    torch.testing.assert_close(free.encode_features(*alone), alone_feats, atol=2e-5, rtol=1e-5)
    assert (free.encode_features(*padded)[1, :20] - feats[1, :20]).abs().max() > 1e-3

    assert torch.equal(load_tokenizer(path).encode_codes(*padded), codes)  # .pt files go through the importer


def test_missing_args_fall_back_to_a_guess_with_a_warning(tmp_path, original):
    path = _save(tmp_path / "bare.pt", original)
    with pytest.warns(UserWarning, match="n_heads=12 is guessed"):
        guessed, _ = import_published(path)
    assert guessed.config.n_heads == 12
    batch = _samples([(4, 5)], 32)
    ref, _ = _reference(strip_orig_mod(original), batch)
    assert not torch.allclose(guessed.encode_features(*batch), ref, atol=1e-3)  # why the args matter
    fixed, _ = import_published(path, n_heads=4)  # an explicit value: no guess, exact
    _assert_same(fixed, strip_orig_mod(original), batch)


def test_stored_args_that_contradict_the_weights_are_refused(tmp_path, original):
    with pytest.raises(ConfigError, match="n_embd=64"):
        import_published(_save(tmp_path / "a.pt", original, encoder_args={**ENC, "n_embd": 64}, decoder_args=DEC))
    with pytest.raises(ConfigError, match="n_layer=3"):
        import_published(_save(tmp_path / "b.pt", original, encoder_args=ENC, decoder_args={**DEC, "n_layer": 3}))
    with pytest.raises(ConfigError, match="bias=True"):
        import_published(_save(tmp_path / "c.pt", original, encoder_args={**ENC, "bias": True}, decoder_args=DEC))
    with pytest.raises(ConfigError, match="n_head"):
        import_published(_save(tmp_path / "d.pt", original, encoder_args=ENC, decoder_args={**DEC, "n_head": 2}))
