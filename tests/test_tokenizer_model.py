"""Tokenizer model: EMA quantizer math, gradient reversal, the causal-by-second encoder, encode_codes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurolm.errors import ConfigError
from neurolm.tokenizer import VQTokenizer, build_sample, preset
from neurolm.tokenizer.quantizer import NormEMAVectorQuantizer, kmeans_cosine
from neurolm.tokenizer.vq import GradReverse, dann_alpha


def test_ema_update_follows_the_normalised_ema_rule():
    torch.manual_seed(0)
    q = NormEMAVectorQuantizer(num_codes=4, dim=3, decay=0.99, kmeans_iters=0)
    w0 = q.embedding.weight.detach().clone()
    z = F.normalize(torch.randn(10, 3), dim=-1)
    codes = q.codes(z)
    q.ema_update(z, codes)
    for k in range(4):
        sel = z[codes == k]
        if len(sel) == 0:
            torch.testing.assert_close(q.embedding.weight[k], w0[k])  # unused codes keep their value
        else:
            mean = F.normalize(sel.sum(0) / len(sel), dim=-1)
            expect = F.normalize(0.99 * w0[k] + 0.01 * mean, dim=-1)
            torch.testing.assert_close(q.embedding.weight[k], expect)
    torch.testing.assert_close(q.embedding.weight.norm(dim=-1), torch.ones(4))


def test_quantizer_straight_through_commitment_and_padding():
    torch.manual_seed(0)
    q = NormEMAVectorQuantizer(num_codes=8, dim=4, kmeans_iters=3).train()
    z = torch.randn(2, 5, 4, requires_grad=True)
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    before = q.embedding.weight.detach().clone()
    zq, loss, codes = q(z, valid)
    assert bool(q.embedding.initted.item()) and not torch.equal(before, q.embedding.weight)
    zn = F.normalize(z.detach(), dim=-1)
    torch.testing.assert_close(zq.detach().norm(dim=-1), torch.ones(2, 5))  # values are unit codes
    torch.testing.assert_close(loss, F.mse_loss(zq.detach()[valid], zn[valid]))  # β=1, valid tokens only
    zq.sum().backward()  # straight-through: gradient of zq w.r.t. z is that of l2norm(z)
    z2 = z.detach().clone().requires_grad_()
    F.normalize(z2, dim=-1).sum().backward()
    torch.testing.assert_close(z.grad, z2.grad)


def test_padding_does_not_move_the_codebook():
    torch.manual_seed(0)
    z = torch.randn(1, 6, 4)
    valid = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    out = []
    for pad_value in (0.0, 100.0):
        torch.manual_seed(1)
        q = NormEMAVectorQuantizer(num_codes=8, dim=4, kmeans_iters=0).train()
        zz = z.clone()
        zz[0, 4:] = pad_value + torch.arange(4.0)
        q(zz, valid)
        out.append(q.embedding.weight.detach().clone())
    torch.testing.assert_close(out[0], out[1])


def test_kmeans_cosine_separates_clusters():
    g = torch.Generator().manual_seed(0)
    centers = F.normalize(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]), dim=-1)
    x = F.normalize(centers.repeat_interleave(20, 0) + 0.05 * torch.randn(60, 3, generator=g), dim=-1)
    means = kmeans_cosine(x, 6, 10, generator=g)  # plain k-means may merge clusters when k is exact
    sims = (means @ centers.t()).max(dim=0).values
    assert (sims > 0.95).all()


def test_gradient_reversal_flips_and_scales_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    (GradReverse.apply(x, 0.3) * 2.0).sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4, 3), -0.6))
    assert dann_alpha(0.0) == 0.0 and abs(dann_alpha(1.0) - (2 / (1 + math.exp(-10)) - 1)) < 1e-12
    assert 0 < dann_alpha(0.1) < dann_alpha(0.5) < 1


def _batch(n_ch=3, n_sec=4, seed=0, max_tokens=16):
    sig = np.random.default_rng(seed).standard_normal((n_ch, n_sec * 200)).astype(np.float32)
    s = build_sample(sig, [0, 2, 17][:n_ch], max_tokens=max_tokens)
    return {k: v[None] for k, v in s.items()}, sig


@pytest.mark.parametrize("mode,norm", [("causal-by-second", None), ("full", "reference"), ("full", "valid-patches")])
def test_causal_by_second_encoder_ignores_later_seconds(mode, norm):
    torch.manual_seed(0)
    model = VQTokenizer(preset("tiny", encoder_attention=mode, conv_norm=norm, max_tokens=16)).eval()
    b, _ = _batch()
    feats = model.encode_features(b["x"], b["ch"], b["time"], b["mask"])
    x2 = b["x"].clone()
    x2[0, 6:12] += 5.0 * torch.randn(6, 200)  # seconds 2 and 3 change
    feats2 = model.encode_features(x2, b["ch"], b["time"], b["mask"])
    early = torch.allclose(feats[0, :6], feats2[0, :6], atol=1e-6)
    if mode == "causal-by-second":
        assert early, "codes of seconds 0-1 must not depend on seconds 2-3"
    else:
        assert not early, "a bidirectional encoder does see later seconds (the reference's leak)"
    assert not torch.allclose(feats[0, 6:12], feats2[0, 6:12])


def test_encode_codes_shape_padding_and_padding_invariance():
    torch.manual_seed(0)
    model = VQTokenizer(preset("tiny", max_tokens=16)).eval()
    b, sig = _batch()
    codes = model.encode_codes(b["x"], b["ch"], b["time"], b["mask"])
    assert codes.shape == (1, 16) and codes.dtype == torch.long
    assert (codes[0, 12:] == -1).all() and (codes[0, :12] >= 0).all() and (codes[0, :12] < 512).all()
    longer = build_sample(sig, [0, 2, 17], max_tokens=32)
    codes2 = model.encode_codes(*(longer[k][None] for k in ("x", "ch", "time", "mask")))
    assert torch.equal(codes2[0, :12], codes[0, :12])


def test_code_assignment_runs_in_fp32_under_bf16_autocast():
    """Projection and codebook lookup leave autocast, in training (VQ.encode) as in encode_codes."""
    torch.manual_seed(0)
    model = VQTokenizer(preset("tiny", max_tokens=64, codebook_size=4096, code_dim=8)).eval()
    seen = []
    model.VQ.quantize.register_forward_pre_hook(lambda m, a: seen.append((torch.is_autocast_enabled("cpu"),
                                                                          a[0].dtype)))
    samples = [build_sample(np.random.default_rng(s).standard_normal((4, 3200)).astype(np.float32), [0, 2, 17, 21],
                            max_tokens=64) for s in range(8)]
    b = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z_q, codes, _, feats = model.VQ.encode(b["x"], b["ch"], b["time"], b["mask"])
        coded = model.encode_codes(b["x"], b["ch"], b["time"], b["mask"])
    assert seen == [(False, torch.float32)]
    assert not torch.equal(feats, model.encode_features(b["x"], b["ch"], b["time"], b["mask"]))  # encoder in bf16
    z = F.normalize(model.VQ.encode_task_layer(feats.float()), dim=-1)
    expect = (z @ model.VQ.quantize.embedding.weight.t()).argmax(-1)  # fp32, autocast off
    assert torch.equal(codes, expect) and z_q.dtype == torch.float32
    z_bf16 = (z.bfloat16() @ model.VQ.quantize.embedding.weight.t().bfloat16()).argmax(-1)
    assert not torch.equal(z_bf16, expect)  # bf16 lookup would flip near-tie codes: the check can fail
    assert torch.equal(coded[b["mask"]], codes[b["mask"]])


def test_training_forward_reports_every_loss_and_backpropagates():
    torch.manual_seed(0)
    cfg = preset("tiny", max_tokens=16)
    model = VQTokenizer(cfg).train()
    model.attach_text_embedding(torch.randn(1000, 64))
    from neurolm.tokenizer.data import make_targets

    b, _ = _batch()
    b.update({k: v[None] for k, v in make_targets(b["x"][0], b["mask"][0]).items()})
    loss, terms, codes = model(b, alpha=0.5, text_ids=torch.randint(0, 1000, (2, 8)))
    assert set(terms) == {"commit", "freq", "raw", "domain_eeg", "domain_text", "total"}
    loss.backward()
    assert model.VQ.encoder.patch_embed.conv1.weight.grad is not None
    assert model.VQ.quantize.embedding.weight.grad is None  # codebook moves by EMA only


def test_config_validation_and_hash():
    a, b = preset("tiny"), preset("tiny").model_copy(update={"name": "other"})
    assert a.config_hash() == b.config_hash()  # the name is not architecture
    assert a.config_hash() != preset("tiny", encoder_attention="full").config_hash()
    full = preset("tiny", encoder_attention="full")
    assert (a.conv_norm, full.conv_norm) == ("valid-patches", "reference")  # unset: follows the attention
    free = preset("tiny", encoder_attention="full", conv_norm="valid-patches")
    assert free.config_hash() != full.config_hash()
    with pytest.raises(ConfigError, match="causal-by-second"):  # the whole-sample norm would leak the future
        preset("tiny", conv_norm="reference")
    with pytest.raises(ConfigError):
        preset("tiny", d_model=63)
    with pytest.raises(ConfigError):
        preset("nope")
    base = preset("base")
    assert (base.d_model, base.n_heads, base.n_enc_layers, base.n_dec_layers) == (768, 12, 12, 4)
    assert (base.codebook_size, base.code_dim, base.conv_out_chans, base.pos_rows, base.time_rows) == (8192, 128, 16, 256, 64)


def test_patch_group_norm_equals_groupnorm_without_padding_and_ignores_padding():
    from neurolm.tokenizer.model import PatchGroupNorm

    torch.manual_seed(0)
    gn = PatchGroupNorm(4, 8)
    torch.nn.init.normal_(gn.weight)
    torch.nn.init.normal_(gn.bias)
    x = torch.randn(2, 8, 6, 25)
    valid = torch.ones(2, 6, dtype=torch.bool)
    time = torch.arange(6).repeat(2, 1)
    ref = torch.nn.functional.group_norm(x, 4, gn.weight, gn.bias, gn.eps)
    torch.testing.assert_close(gn(x, valid, time, "full"), ref, atol=1e-5, rtol=1e-5)
    padded = torch.cat([x, torch.randn(2, 8, 3, 25) * 50], dim=2)
    pvalid = torch.cat([valid, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    ptime = torch.cat([time, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(gn(padded, pvalid, ptime, "full")[:, :, :6], ref, atol=1e-5, rtol=1e-5)
    # "reference": the original's plain GroupNorm, padding patches in the statistics
    whole = torch.nn.functional.group_norm(padded, 4, gn.weight, gn.bias, gn.eps)
    torch.testing.assert_close(gn(padded, pvalid, ptime, "reference"), whole, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(whole[:, :, :6], ref, atol=1e-2)
    # causal: the statistics of second 0 are those of second 0 alone
    causal = gn(x, valid, time, "causal-by-second")
    first = torch.nn.functional.group_norm(x[:, :, :1], 4, gn.weight, gn.bias, gn.eps)
    torch.testing.assert_close(causal[:, :, :1], first, atol=1e-5, rtol=1e-5)
