"""Checkpoints (hashes, corrupt fallback, pruning, state round trip) and the published-weights import."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer import VQTokenizer, build_sample, import_published, load_tokenizer, preset
from neurolm.tokenizer.model import NeuralTransformer
from neurolm.tokenizer.weights import model_weights, published_args, published_layout, tokenizer_metadata
from storage import checkpoints
from storage.checkpoints import (checkpoint_sha256, list_checkpoints, load_checkpoint, load_latest_good,
                                 save_checkpoint)


def _save(d, step, keep_last=5):
    w = {"a": torch.full((3,), float(step)), "b": torch.arange(4)}
    state = {"step": step, "opt": {0: {"m": torch.ones(2) * step}, "groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]},
             "none": None, "rng": torch.get_rng_state()}
    return save_checkpoint(str(d), w, state, {"store": "x"}, keep_last=keep_last, metadata={"k": "v"})


def test_state_round_trip_and_hash(tmp_path):
    path = _save(tmp_path, 7)
    ck = load_checkpoint(path)
    assert ck.step == 7 and ck.metadata == {"k": "v"} and ck.lineage == {"store": "x"}
    assert torch.equal(ck.state["opt"][0]["m"], torch.full((2,), 7.0))  # int keys survive
    assert ck.state["opt"]["groups"][0]["betas"] == (0.9, 0.99) and ck.state["none"] is None
    assert ck.state["rng"].dtype == torch.uint8 and ck.state["rng"].shape == torch.get_rng_state().shape
    with open(os.path.join(path, "model.safetensors"), "rb") as f:
        expect = hashlib.sha256(f.read()).hexdigest()
    assert checkpoint_sha256(str(tmp_path)) == checkpoint_sha256(path) == expect
    assert checkpoint_sha256(os.path.join(path, "model.safetensors")) == expect
    # the files read back with other readers than ours: safetensors' own and json
    from safetensors import safe_open

    with safe_open(os.path.join(path, "model.safetensors"), framework="pt") as f:
        assert sorted(f.keys()) == ["a", "b"]
        assert torch.equal(f.get_tensor("a"), torch.full((3,), 7.0)) and torch.equal(f.get_tensor("b"), torch.arange(4))
    with open(os.path.join(path, "lineage.json")) as f:
        assert json.load(f) == {"store": "x"}
    with open(os.path.join(path, "state.json")) as f:
        assert ["step", 7] in json.load(f)["__dict__"]  # the documented state encoding: [key, value] pairs


def test_corrupt_latest_falls_back_to_previous_good(tmp_path):
    for s in (1, 2, 3):
        _save(tmp_path, s)
    latest = os.path.join(tmp_path, "ckpt-000000003", "model.safetensors")
    data = bytearray(open(latest, "rb").read())
    data[-1] ^= 0xFF
    open(latest, "wb").write(bytes(data))
    with pytest.warns(UserWarning, match="corrupt"):
        ck = load_latest_good(str(tmp_path))
    assert ck.step == 2 and torch.equal(ck.weights["a"], torch.full((3,), 2.0))
    os.remove(os.path.join(tmp_path, "ckpt-000000002", "manifest.json"))  # a save killed before its manifest
    with pytest.warns(UserWarning):
        assert load_latest_good(str(tmp_path)).step == 1
    os.remove(os.path.join(tmp_path, "ckpt-000000001", "state.json"))
    with pytest.raises(StoreError, match="corrupt"), pytest.warns(UserWarning):
        load_latest_good(str(tmp_path))
    assert load_latest_good(str(tmp_path / "empty")) is None



def test_resolve_names_one_checkpoint_for_every_kind_of_path(tmp_path):
    for s in (1, 2):
        _save(tmp_path, s)
    second = os.path.join(tmp_path, "ckpt-000000002")
    with open(os.path.join(second, "model.safetensors"), "rb") as f:
        sha2 = hashlib.sha256(f.read()).hexdigest()
    assert checkpoints.resolve(str(tmp_path)) == (second, sha2)  # a run directory: its newest good checkpoint
    assert checkpoints.resolve(second) == (second, sha2)
    weights = os.path.join(second, "model.safetensors")
    assert checkpoints.resolve(weights) == (weights, sha2)  # a weights file is itself
    assert checkpoints.load(str(tmp_path)).step == 2
    data = bytearray(open(weights, "rb").read())
    data[-1] ^= 0xFF  # the newest one corrupt (same size): the run directory falls back, with a warning
    open(weights, "wb").write(bytes(data))
    with pytest.warns(UserWarning, match="corrupt"):
        assert checkpoints.resolve(str(tmp_path))[0] == os.path.join(tmp_path, "ckpt-000000001")
    with pytest.raises(StoreError, match="corrupt"):
        checkpoints.resolve(second)
    with pytest.raises(StoreError, match="no tokenizer checkpoint"):
        checkpoints.resolve(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no good checkpoint"):
        checkpoints.load(str(tmp_path / "empty"))

def test_keep_last_prunes_old_checkpoints(tmp_path):
    for s in range(1, 6):
        _save(tmp_path, s, keep_last=2)
    assert [s for s, _ in list_checkpoints(str(tmp_path))] == [4, 5]


def test_base_encoder_matches_the_reference_parameter_count():
    with torch.device("meta"):
        enc = NeuralTransformer(preset("base"), 12)
    assert sum(p.numel() for p in enc.parameters()) == 85_510_272  # reference §2.1
    assert not any(n.endswith("bias") for n, _ in enc.blocks.named_parameters())  # bias=False in blocks


def _codes(model, seed=0):
    sig = np.random.default_rng(seed).standard_normal((3, 4 * 200)).astype(np.float32)
    s = build_sample(sig, [0, 2, 17], max_tokens=16)
    return model.encode_codes(*(s[k][None] for k in ("x", "ch", "time", "mask")))


def test_import_published_layout(tmp_path):
    torch.manual_seed(0)
    cfg = preset("tiny", encoder_attention="full", max_tokens=16)
    src = VQTokenizer(cfg)
    src.VQ.quantize.embedding.initted.fill_(1.0)
    sd = published_layout(src, wte=torch.randn(1000, 64))
    for key in ("_orig_mod.VQ.encoder.patch_embed.conv1.weight", "_orig_mod.VQ.encoder.patch_embed.l.0.weight",
                "_orig_mod.VQ.encoder.blocks.1.attn.c_attn.weight", "_orig_mod.VQ.encoder.blocks.0.mlp.c_proj.weight",
                "_orig_mod.VQ.encoder.fc_norm.bias", "_orig_mod.VQ.decoder_freq.patch_embed.weight",
                "_orig_mod.VQ.decoder_raw.time_embed.weight", "_orig_mod.VQ.quantize.embedding.weight",
                "_orig_mod.VQ.quantize.embedding.cluster_size", "_orig_mod.VQ.quantize.embedding.embed_avg",
                "_orig_mod.VQ.quantize.embedding.initted", "_orig_mod.VQ.encode_task_layer.2.weight",
                "_orig_mod.VQ.decode_task_layer_freq.2.weight", "_orig_mod.VQ.decode_task_layer_raw.0.bias",
                "_orig_mod.domain_classifier.2.bias", "_orig_mod.wte.weight"):
        assert key in sd, key
    assert "_orig_mod.VQ.encoder.blocks.0.ln_1.bias" not in sd
    path = str(tmp_path / "VQ.pt")
    torch.save({"model": sd, "optimizer": {}, **published_args(cfg), "iter_num": 10, "epoch": 1}, path)
    model, report = import_published(path)  # n_heads=2 read from the stored encoder_args
    assert model.config.encoder_attention == "full" and not model.training
    assert model.config.conv_norm == "reference" and model.config.n_heads == 2
    assert report.missing == () and report.unexpected == ()
    assert set(report.ignored) == {"wte.weight", "VQ.quantize.cluster_size"}
    assert torch.equal(_codes(model), _codes(src.eval()))
    assert torch.equal(_codes(load_tokenizer(path)), _codes(src))  # .pt files go through the importer

    del sd["_orig_mod.VQ.encoder.blocks.1.attn.c_attn.weight"]
    sd["_orig_mod.VQ.something_new"] = torch.zeros(1)
    torch.save({"model": sd}, path)
    with pytest.raises(ConfigError, match="MISSING.*c_attn.*UNEXPECTED.*something_new"):
        import_published(path, n_heads=2)


def test_load_tokenizer_rejects_foreign_files(tmp_path):
    from safetensors.torch import save_file

    p = str(tmp_path / "w.safetensors")
    save_file({"x": torch.zeros(2)}, p)
    with pytest.raises(ConfigError, match="not a neurolm tokenizer"):
        load_tokenizer(p)
    with pytest.raises(StoreError):
        load_tokenizer(str(tmp_path / "missing"))
    cfg = preset("tiny", max_tokens=16)
    m = VQTokenizer(cfg)
    save_file(model_weights(m), p, metadata=tokenizer_metadata(cfg))
    assert torch.equal(_codes(load_tokenizer(p)), _codes(m.eval()))


@pytest.mark.parametrize("attention", ["full", "causal-by-second"])
def test_conv_norm_is_recorded_and_old_checkpoints_keep_the_padding_free_norm(tmp_path, attention):
    import json

    from safetensors.torch import save_file

    cfg = preset("tiny", max_tokens=16, encoder_attention=attention)
    assert cfg.conv_norm == ("reference" if attention == "full" else "valid-patches")
    m = VQTokenizer(cfg)
    p = str(tmp_path / "w.safetensors")
    meta = tokenizer_metadata(cfg)
    assert json.loads(meta["tokenizer_config"])["conv_norm"] == cfg.conv_norm
    save_file(model_weights(m), p, metadata=meta)
    assert load_tokenizer(p).config == cfg
    # a file written before conv_norm existed: no field, and a hash computed without it
    old = json.loads(meta["tokenizer_config"])
    del old["conv_norm"]
    legacy_cfg = cfg.model_copy(update={"conv_norm": "valid-patches"})
    save_file(model_weights(m), p, metadata={**meta, "tokenizer_config": json.dumps(old),
                                            "config_hash": legacy_cfg.legacy_config_hash()})
    loaded = load_tokenizer(p)
    assert loaded.config.conv_norm == "valid-patches"  # what every model then was trained with
    assert torch.equal(_codes(loaded), _codes(_legacy(m, legacy_cfg)))
    save_file(model_weights(m), p, metadata={**meta, "tokenizer_config": json.dumps(old), "config_hash": "0" * 16})
    with pytest.raises(ConfigError, match="does not match"):
        load_tokenizer(p)


def _legacy(m, cfg):
    out = VQTokenizer(cfg)
    out.load_state_dict(m.state_dict())
    return out.eval()
