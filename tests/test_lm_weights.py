"""Import of the original's nanoGPT-layout checkpoints, checked against an independent forward.

The reference below is re-typed from the original's description (reference §2.1, §3.1-3.4, §9.1,
STACK_FACTS.md) with plain torch.nn.functional over the original's state-dict keys: it uses
neither neurolm.lm nor transformers, so a wrong transpose, position or mask shows up as a
logit difference.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurolm.errors import ConfigError
from neurolm.lm.weights import import_published

TEXT_VOCAB = 50304
N_CODES = 64
ENC_D, ENC_LAYERS, ENC_HEADS, CONV = 48, 2, 12, 8


def original_state_dict(n_embd: int, n_layer: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under the original NeuroLM's key names and shapes (a compiled module's prefix)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, std=0.05):
        return torch.randn(*shape, generator=g) * std

    sd = {}
    t = "tokenizer."
    sd[t + "patch_embed.conv1.weight"], sd[t + "patch_embed.conv1.bias"] = r(CONV, 1, 1, 15, std=0.3), r(CONV)
    for i in (2, 3):
        sd[t + f"patch_embed.conv{i}.weight"] = r(CONV, CONV, 1, 3, std=0.3)
        sd[t + f"patch_embed.conv{i}.bias"] = r(CONV)
    for i in (1, 2, 3):
        sd[t + f"patch_embed.norm{i}.weight"], sd[t + f"patch_embed.norm{i}.bias"] = 1 + r(CONV), r(CONV)
    sd[t + "patch_embed.l.0.weight"], sd[t + "patch_embed.l.0.bias"] = r(ENC_D, 25 * CONV), r(ENC_D)
    sd[t + "pos_embed.weight"], sd[t + "time_embed.weight"] = r(256, ENC_D, std=1.0), r(64, ENC_D, std=1.0)
    for i in range(ENC_LAYERS):
        b = t + f"blocks.{i}."
        sd[b + "ln_1.weight"], sd[b + "ln_2.weight"] = 1 + r(ENC_D), 1 + r(ENC_D)
        sd[b + "attn.c_attn.weight"], sd[b + "attn.c_proj.weight"] = r(3 * ENC_D, ENC_D), r(ENC_D, ENC_D)
        sd[b + "mlp.c_fc.weight"], sd[b + "mlp.c_proj.weight"] = r(4 * ENC_D, ENC_D), r(ENC_D, 4 * ENC_D)
    sd[t + "fc_norm.weight"], sd[t + "fc_norm.bias"] = 1 + r(ENC_D), r(ENC_D)
    if n_embd != ENC_D:
        sd["encode_transform_layer.0.weight"], sd["encode_transform_layer.0.bias"] = r(n_embd, ENC_D), r(n_embd)
    g2 = "GPT2.transformer."
    sd[g2 + "wte.weight"], sd[g2 + "wpe.weight"] = r(TEXT_VOCAB, n_embd, std=0.5), r(1024, n_embd, std=0.3)
    for i in range(n_layer):
        b = g2 + f"h.{i}."
        for ln in ("ln_1", "ln_2"):
            sd[b + ln + ".weight"], sd[b + ln + ".bias"] = 1 + r(n_embd), r(n_embd)
        sd[b + "attn.c_attn.weight"], sd[b + "attn.c_attn.bias"] = r(3 * n_embd, n_embd), r(3 * n_embd)
        sd[b + "attn.c_proj.weight"], sd[b + "attn.c_proj.bias"] = r(n_embd, n_embd), r(n_embd)
        sd[b + "mlp.c_fc.weight"], sd[b + "mlp.c_fc.bias"] = r(4 * n_embd, n_embd), r(4 * n_embd)
        sd[b + "mlp.c_proj.weight"], sd[b + "mlp.c_proj.bias"] = r(n_embd, 4 * n_embd), r(n_embd)
        sd[b + "attn.bias"] = torch.tril(torch.ones(1, 1, 1024, 1024))[..., :8, :8]  # nanoGPT's mask buffer
    sd[g2 + "ln_f.weight"], sd[g2 + "ln_f.bias"] = 1 + r(n_embd), r(n_embd)
    sd["GPT2.lm_head.weight"] = r(TEXT_VOCAB + N_CODES, n_embd)
    sd["pos_embed.weight"] = r(256, n_embd, std=1.0)
    return {"_orig_mod." + k: v for k, v in sd.items()}


# -- the independent reference forward ------------------------------------------------------------
def ref_attention(x, w_qkv, b_qkv, w_o, b_o, n_head, allowed):
    b, n, d = x.shape
    q, k, v = F.linear(x, w_qkv, b_qkv).split(d, dim=2)
    q, k, v = (z.view(b, n, n_head, d // n_head).transpose(1, 2) for z in (q, k, v))
    att = (q @ k.transpose(-2, -1)) / math.sqrt(d // n_head)
    att = att.masked_fill(~allowed, float("-inf")).softmax(-1)
    return F.linear((att @ v).transpose(1, 2).reshape(b, n, d), w_o, b_o)


def ref_encoder(sd, x, ch, time, valid):
    """NeuralTransformer of the original: conv stem with nn.GroupNorm, bias-free pre-LN blocks, key-padding mask."""
    t = "tokenizer."
    h = x.unsqueeze(1)
    for i, (stride, pad) in enumerate([((1, 8), (0, 7)), (1, (0, 1)), (1, (0, 1))], start=1):
        h = F.conv2d(h, sd[t + f"patch_embed.conv{i}.weight"], sd[t + f"patch_embed.conv{i}.bias"], stride, pad)
        h = F.gelu(F.group_norm(h, 4, sd[t + f"patch_embed.norm{i}.weight"], sd[t + f"patch_embed.norm{i}.bias"]))
    b, c, n, tt = h.shape
    h = h.permute(0, 2, 3, 1).reshape(b, n, tt * c)  # rearrange 'B C NA T -> B NA (T C)'
    h = F.gelu(F.linear(h, sd[t + "patch_embed.l.0.weight"], sd[t + "patch_embed.l.0.bias"]))
    h = h + sd[t + "pos_embed.weight"][ch] + sd[t + "time_embed.weight"][time]
    allowed = valid[:, None, None, :].expand(b, 1, n, n)
    for i in range(ENC_LAYERS):
        p = t + f"blocks.{i}."
        a = F.layer_norm(h, (ENC_D,), sd[p + "ln_1.weight"], None, 1e-5)
        h = h + ref_attention(a, sd[p + "attn.c_attn.weight"], None, sd[p + "attn.c_proj.weight"], None,
                              ENC_HEADS, allowed)
        m = F.layer_norm(h, (ENC_D,), sd[p + "ln_2.weight"], None, 1e-5)
        h = h + F.linear(F.gelu(F.linear(m, sd[p + "mlp.c_fc.weight"])), sd[p + "mlp.c_proj.weight"])
    return F.layer_norm(h, (ENC_D,), sd[t + "fc_norm.weight"], sd[t + "fc_norm.bias"], 1e-6)


def ref_gpt(sd, tok_emb, pos, allowed, n_layer, n_head):
    """nanoGPT's GPT.forward on token embeddings: + wpe[pos], Linear blocks, exact GELU, ln_f, lm_head."""
    g = "GPT2.transformer."
    d = tok_emb.shape[-1]
    h = tok_emb + sd[g + "wpe.weight"][pos]
    for i in range(n_layer):
        p = g + f"h.{i}."
        a = F.layer_norm(h, (d,), sd[p + "ln_1.weight"], sd[p + "ln_1.bias"], 1e-5)
        h = h + ref_attention(a, sd[p + "attn.c_attn.weight"], sd[p + "attn.c_attn.bias"],
                              sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"], n_head, allowed)
        m = F.layer_norm(h, (d,), sd[p + "ln_2.weight"], sd[p + "ln_2.bias"], 1e-5)
        h = h + F.linear(F.gelu(F.linear(m, sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"])),
                         sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"])
    h = F.layer_norm(h, (d,), sd[g + "ln_f.weight"], sd[g + "ln_f.bias"], 1e-5)
    return F.linear(h, sd["GPT2.lm_head.weight"])


def ref_eeg_embed(sd, feats, ch):
    if "encode_transform_layer.0.weight" in sd:
        feats = F.gelu(F.linear(feats, sd["encode_transform_layer.0.weight"], sd["encode_transform_layer.0.bias"]))
    return feats + sd["pos_embed.weight"][ch]


def ref_stair(n_ch, n_sec, length):
    """tril, open each second's C×C block, close padded keys: the original dataset.py construction."""
    m = torch.tril(torch.ones(length, length))
    for t in range(n_sec):
        m[t * n_ch:(t + 1) * n_ch, t * n_ch:(t + 1) * n_ch] = 1
    m[:, n_ch * n_sec:] = 0
    return m.bool()


def eeg_batch(n_ch, n_sec, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    nv = n_ch * n_sec
    x = torch.zeros(1, length, 200)
    x[0, :nv] = torch.randn(nv, 200, generator=g) * 0.5
    ch = torch.full((1, length), 136)
    ch[0, :nv] = torch.randperm(100, generator=g)[:n_ch].repeat(n_sec)
    time = torch.zeros(1, length, dtype=torch.long)
    time[0, :nv] = torch.arange(n_sec).repeat_interleave(n_ch)
    valid = torch.zeros(1, length, dtype=torch.bool)
    valid[0, :nv] = True
    return {"x": x, "ch": ch, "time": time, "mask": valid}


# -- tests ---------------------------------------------------------------------------------------
CASES = [(48, 2, 4), (64, 2, 4)]  # B-like (Identity projection) and L/XL-like (Linear + GELU)


def save_resume_dict(tmp_path, n_embd, n_layer, n_head, name="NeuroLM.pt"):
    sd = original_state_dict(n_embd, n_layer)
    path = tmp_path / name
    torch.save({"model": sd, "optimizer": {}, "iter_num": 1234, "epoch": 3,
                "model_args": {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "block_size": 1024,
                               "bias": True, "vocab_size": TEXT_VOCAB, "dropout": 0.0}}, path)
    return str(path), {k[len("_orig_mod."):]: v for k, v in sd.items()}


def close(a, b):
    return torch.allclose(a, b, atol=2e-5, rtol=1e-5), float((a - b).abs().max())


@pytest.fixture(params=[(c, attn) for c in CASES for attn in ("sdpa", "eager")], ids=lambda p: f"d{p[0][0]}-{p[1]}")
def imported(request, tmp_path):
    (n_embd, n_layer, n_head), attn = request.param
    path, sd = save_resume_dict(tmp_path, n_embd, n_layer, n_head)
    model, report, _ = import_published(path, attn_implementation=attn)
    return model, report, sd, n_layer, n_head


def test_config_and_report(imported):
    model, report, sd, n_layer, n_head = imported
    cfg = model.config
    got = (cfg.input_mode, cfg.tokenizer.encoder_attention, cfg.tokenizer.conv_norm, cfg.n_layer, cfg.n_head)
    assert got == ("features", "full", "reference", n_layer, n_head)
    assert cfg.n_logits == TEXT_VOCAB + N_CODES
    assert report.iter_num == 1234 and report.epoch == 3 and len(report.dropped) == n_layer


def test_eeg_logits_equal_the_original_forward(imported):
    model, _, sd, n_layer, n_head = imported
    b = eeg_batch(n_ch=3, n_sec=4, length=12)
    with torch.no_grad():
        feats = ref_encoder(sd, b["x"], b["ch"], b["time"], b["mask"])
        want = ref_gpt(sd, ref_eeg_embed(sd, feats, b["ch"]), b["time"], ref_stair(3, 4, 12), n_layer, n_head)
        got = model.forward_eeg(b)
    ok, err = close(got, want)
    assert ok, err


def test_padded_eeg_logits_equal_the_original_forward(imported):
    """Padded samples too: the imported encoder normalises its conv stem over every patch, padding
    included (conv_norm="reference"), as the original's nn.GroupNorm does."""
    model, _, sd, n_layer, n_head = imported
    b = eeg_batch(n_ch=3, n_sec=3, length=14, seed=1)
    b["x"][0, 9:] = torch.randn(5, 200) * 0.5  # padding that is not zero: its statistics must count alike
    with torch.no_grad():
        feats = ref_encoder(sd, b["x"], b["ch"], b["time"], b["mask"])
        want = ref_gpt(sd, ref_eeg_embed(sd, feats, b["ch"]), b["time"], ref_stair(3, 3, 14), n_layer, n_head)
        got = model.forward_eeg(b)  # our encoder runs on the padded sample
    v = b["mask"]
    ok, err = close(got[v], want[v])
    assert ok, err


def test_text_logits_equal_the_original_forward(imported):
    model, _, sd, n_layer, n_head = imported
    ids = torch.randint(0, 50257, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = ref_gpt(sd, sd["GPT2.transformer.wte.weight"][ids], torch.arange(9)[None].expand(2, 9),
                       torch.tril(torch.ones(9, 9)).bool(), n_layer, n_head)
        got = model.forward_text(ids)
    ok, err = close(got, want)
    assert ok, err


def test_eeg_then_text_logits_equal_the_original_forward(imported):
    """Text continues at the last second + 1, sees every EEG token and itself causally."""
    model, _, sd, n_layer, n_head = imported
    n_ch, n_sec, n_txt = 2, 3, 5
    b = eeg_batch(n_ch=n_ch, n_sec=n_sec, length=n_ch * n_sec, seed=2)
    ids = torch.tensor([[50257, 464, 3290, 318, 11]])  # [SEP] then text
    ne = n_ch * n_sec
    allowed = torch.zeros(ne + n_txt, ne + n_txt, dtype=torch.bool)
    allowed[:ne, :ne] = ref_stair(n_ch, n_sec, ne)
    for q in range(ne, ne + n_txt):
        allowed[q, : q + 1] = True
    pos = torch.cat([b["time"], torch.arange(n_sec, n_sec + n_txt)[None]], dim=1)
    with torch.no_grad():
        feats = ref_encoder(sd, b["x"], b["ch"], b["time"], b["mask"])
        emb = torch.cat([ref_eeg_embed(sd, feats, b["ch"]), sd["GPT2.transformer.wte.weight"][ids]], dim=1)
        want = ref_gpt(sd, emb, pos, allowed, n_layer, n_head)
        got = model.forward_eeg_text(b, ids)
    ok, err = close(got, want)
    assert ok, err


def test_vq_codebook_is_taken_and_checked(tmp_path):
    path, sd = save_resume_dict(tmp_path, 48, 2, 4)
    enc = {k[len("tokenizer."):]: v for k, v in sd.items() if k.startswith("tokenizer.")}
    codebook = F.normalize(torch.randn(N_CODES, 32), dim=-1)
    vq = {"_orig_mod.VQ.encoder." + k: v for k, v in enc.items()}
    vq["_orig_mod.VQ.quantize.embedding.weight"] = codebook
    torch.save({"model": vq}, tmp_path / "VQ.pt")
    model, report, cb = import_published(path, vq_path=str(tmp_path / "VQ.pt"))
    assert report.vq_checked and torch.equal(cb, codebook) and model.config.tokenizer.code_dim == 32
    other = dict(vq)
    other["_orig_mod.VQ.encoder.fc_norm.bias"] = other["_orig_mod.VQ.encoder.fc_norm.bias"] + 1
    torch.save({"model": other}, tmp_path / "VQ2.pt")
    with pytest.raises(ConfigError, match="not the tokenizer"):
        import_published(path, vq_path=str(tmp_path / "VQ2.pt"))


def test_bad_files_are_refused_before_building(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        import_published(str(tmp_path / "missing.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="weights_only"):
        import_published(str(tmp_path / "junk.pt"))
    torch.save({"model": {"x": torch.zeros(1)}}, tmp_path / "foreign.pt")
    with pytest.raises(ConfigError, match="not a NeuroLM stage-2"):
        import_published(str(tmp_path / "foreign.pt"))
    path, _ = save_resume_dict(tmp_path, 48, 2, 4, "wrong_args.pt")
    obj = torch.load(path, weights_only=True)
    obj["model_args"]["n_layer"] = 5
    torch.save(obj, tmp_path / "wrong_args.pt")
    with pytest.raises(ConfigError, match="disagrees"):
        import_published(str(tmp_path / "wrong_args.pt"))


def test_init_from_gpt2_keeps_gpt2_text_logits(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from neurolm.lm.config import lm_preset
    from neurolm.lm.weights import init_from_gpt2

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=64, activation_function="gelu",
                                    attn_implementation="eager")).eval()
    hf.save_pretrained(tmp_path / "gpt2")
    cfg = lm_preset("tiny")
    model = init_from_gpt2(cfg, str(tmp_path / "gpt2")).eval()
    ids = torch.randint(0, 50257, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = hf(input_ids=ids).logits
        got = model.forward_text(ids)
    assert torch.allclose(got[..., :50257], want, atol=1e-5)
    new_rows = model.gpt.wte.weight.detach()[50257:]
    assert new_rows.shape == (47, 64) and 0.8 < float(new_rows.std()) < 1.2  # N(0, 1)
    assert torch.equal(model.lm_head.weight[:50257], hf.lm_head.weight)
    with pytest.raises(ConfigError, match="does not fit"):
        init_from_gpt2(lm_preset("tiny", n_layer=3), str(tmp_path / "gpt2"))
