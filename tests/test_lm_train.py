"""Stage-2 optimisation: schedule, decay groups, accumulation, and tiny overfitting a batch."""

from __future__ import annotations

import math

import pytest
import torch

from neurolm.lm.config import lm_preset
from neurolm.lm.model import NeuroLM
from neurolm.lm.synthetic import random_eeg_batch
from neurolm.lm.targets import next_second_codes
from neurolm.lm.train import LMTrainConfig, evaluate, lr_at, make_optimizer, param_groups, train_step


def tiny_model(mode="codes", seed=0):
    torch.manual_seed(seed)
    cfg = lm_preset("tiny", input_mode=mode)
    m = NeuroLM(cfg, chan_init_std=0.02)
    if mode == "codes":
        m.set_codebook(torch.nn.functional.normalize(torch.randn(cfg.codebook_size, cfg.tokenizer.code_dim), dim=-1))
    return m


def eeg(cfg, seed=0, **kw):
    b = random_eeg_batch(cfg, seed=seed, **kw)
    b["targets"] = next_second_codes(b["codes"], b["ch"], b["time"], b["mask"])
    return b


def test_lr_schedule():
    c = LMTrainConfig(steps=110, warmup_steps=10)
    assert lr_at(0, c) == 0.0 and lr_at(5, c) == pytest.approx(3e-4)
    assert lr_at(10, c) == pytest.approx(6e-4)
    assert lr_at(60, c) == pytest.approx((6e-4 + 6e-5) / 2)
    assert lr_at(110, c) == pytest.approx(6e-5) and lr_at(500, c) == pytest.approx(6e-5)
    vals = [lr_at(s, c) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))


def test_weight_decay_only_on_trainable_matrices():
    m = tiny_model("features")
    decay, no_decay = param_groups(m, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = {id(p) for p in decay["params"]} | {id(p) for p in no_decay["params"]}
    names = {id(p): n for n, p in m.named_parameters()}
    assert all(names[i].startswith("tokenizer.") is False for i in ids)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(ids) == sum(1 for n, p in m.named_parameters() if not n.startswith("tokenizer."))
    opt = make_optimizer(m, LMTrainConfig())
    assert opt.defaults["betas"] == (0.9, 0.95)


def test_accumulating_two_equal_micro_batches_equals_one():
    cfg = LMTrainConfig(steps=10, warmup_steps=0, lr=1e-3, text_batch_size=1)
    b = eeg(lm_preset("tiny"), batch=1, n_ch=3, n_sec=3)
    text = (torch.arange(8)[None], torch.arange(1, 9)[None])
    ms = []
    for micro in (1, 2):
        m = tiny_model()
        opt = make_optimizer(m, cfg.model_copy(update={"grad_accum": micro}))
        train_step(m, opt, 0, cfg, [b] * micro, [text] * micro)
        ms.append(m)
    for (n, p), q in zip(ms[0].named_parameters(), ms[1].parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_tiny_overfits_a_tiny_batch():
    torch.manual_seed(0)
    m = tiny_model()
    cfg = LMTrainConfig(steps=60, warmup_steps=5, lr=3e-3, min_lr=3e-4, text_batch_size=2, text_seq_len=16)
    b = eeg(m.config, batch=2, n_ch=3, n_sec=4, length=14, n_valid=[4, 3])
    ids = torch.randint(0, 50257, (2, 17), generator=torch.Generator().manual_seed(1))
    text = (ids[:, :-1], ids[:, 1:])
    opt = make_optimizer(m, cfg)
    first = before = evaluate(m, [b])
    hist = [train_step(m, opt, s, cfg, [b], [text]) for s in range(cfg.steps)]
    after = evaluate(m, [b])
    assert hist[0]["loss_text"] > 5 and hist[-1]["loss_text"] < 0.2 * hist[0]["loss_text"]
    assert after["loss"] < 0.1 * before["loss"]
    assert after["accuracy"] == 1.0 and first["accuracy"] < 0.5
    assert after["perplexity"] == pytest.approx(math.exp(after["loss"]))
    assert after["tokens"] == 9 + 6  # (4-1)*3 + (3-1)*3 tokens have a next second
    assert all(h["grad_norm"] >= 0 and math.isfinite(h["loss"]) for h in hist)


@pytest.mark.parametrize("name", ["tiny", "B", "L", "XL"])
def test_config_files_equal_their_presets(name):
    from pathlib import Path

    from neurolm.lm.config import load_lm_configs

    path = Path(__file__).resolve().parents[1] / "configs" / f"pretrain_{name}.yaml"
    assert load_lm_configs(str(path)) == load_lm_configs(name)


def test_epochs_resolve_to_steps():
    from neurolm.lm.config import lm_train_preset

    c = lm_train_preset("B").resolved(steps_per_epoch=100)
    assert (c.steps, c.warmup_steps) == (2000, 200)
    assert lm_train_preset("B", steps=50).resolved(100).steps == 50
    with pytest.raises(ValueError):
        lr_at(0, lm_train_preset("B"))


def test_step_under_ddp_equals_the_plain_step(tmp_path):
    """One-process DDP (gloo): accumulation with no_sync and one forward per micro-batch work as plain."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    cfg = LMTrainConfig(steps=10, warmup_steps=0, lr=1e-3, text_batch_size=1, grad_accum=2)
    bs = [eeg(lm_preset("tiny"), seed=s, batch=1, n_ch=3, n_sec=3) for s in (0, 1)]
    texts = [(torch.arange(8)[None] + s, torch.arange(1, 9)[None] + s) for s in (0, 1)]
    plain = tiny_model()
    train_step(plain, make_optimizer(plain, cfg), 0, cfg, bs, texts)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        core = tiny_model()
        ddp = DistributedDataParallel(core)
        metrics = train_step(ddp, make_optimizer(core, cfg), 0, cfg, bs, texts)
        assert evaluate(ddp, bs)["tokens"] == 12
    finally:
        dist.destroy_process_group()
    assert math.isfinite(metrics["loss"])
    for (n, p), q in zip(plain.named_parameters(), core.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n


def test_unigram_baseline():
    from neurolm.lm.train import unigram_baseline

    def batch(targets):
        return {"targets": torch.tensor([targets])}

    train = [batch([3, 3, 3, 1, -1]), batch([3, 2, -1, -1, -1])]
    val = [batch([3, 1, -1]), batch([0, 3, -1])]
    got = unigram_baseline(train, val, n_codes=4)
    counts = torch.tensor([0, 1, 1, 4], dtype=torch.float64) + 1  # add-one smoothing
    p = counts / counts.sum()
    want = -(2 * p[3].log() + p[1].log() + p[0].log()) / 4
    assert got["accuracy"] == 0.5 and got["tokens"] == 4
    assert got["loss"] == pytest.approx(float(want)) and got["perplexity"] == pytest.approx(math.exp(float(want)))


def test_bigram_baseline():
    from neurolm.lm.baselines import bigram_baseline

    def batch(codes, targets):
        return {"codes": torch.tensor([codes]), "targets": torch.tensor([targets])}

    # train pairs (code -> next): 0->1 twice, 0->2 once, 1->3 twice, 2->2 once; code 3 never seen as context
    train = [batch([0, 0, 1, 9], [1, 2, 3, -1]), batch([0, 1, 2, 5], [1, 3, 2, -1])]
    val = [batch([0, 1, 3, 2], [1, 0, 3, -1])]
    got = bigram_baseline(train, val, n_codes=4, prior=2.0)
    uni = torch.tensor([0, 2, 2, 2], dtype=torch.float64) + 1  # add-one smoothed targets
    p_uni = uni / uni.sum()
    # val pairs: 0->1 (counts 2 of 3), 1->0 (0 of 2), 3->3 (unseen context: the unigram)
    p = [(2 + 2 * p_uni[1]) / (3 + 2), (0 + 2 * p_uni[0]) / (2 + 2), p_uni[3]]
    want = -sum(float(torch.log(torch.as_tensor(q))) for q in p) / 3
    assert got["tokens"] == 3 and got["loss"] == pytest.approx(want)
    # predictions: 0 -> 1 (right), 1 -> 3 (wrong), 3 -> the unigram's most frequent, 1 (wrong)
    assert got["accuracy"] == pytest.approx(1 / 3)
    # a context-free corpus: the bigram cannot beat the unigram's accuracy by much
    from neurolm.lm.baselines import unigram_baseline

    g = torch.Generator().manual_seed(0)
    rand = [batch(torch.randint(0, 4, (200,), generator=g).tolist(), torch.randint(0, 4, (200,), generator=g).tolist())
            for _ in range(10)]
    u, b = unigram_baseline(rand[:8], rand[8:], 4), bigram_baseline(rand[:8], rand[8:], 4)
    assert b["loss"] >= u["loss"] - 0.02
