"""The shared training plumbing (neurolm.training): optimizer groups, schedule, precision, RNG, resume checks."""

from __future__ import annotations

import random

import pytest
import torch

from neurolm.errors import ConfigError
from neurolm.training import (DistEnv, autocast_and_scaler, backward, due, find_resume, lr_at, make_adamw,
                              optimizer_step, resolve_device, restore, rng_state, set_lr, set_rng_state,
                              training_state)
from storage.checkpoints import load_latest_good, save_checkpoint


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(5, 4)
        self.lin = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.frozen = torch.nn.Parameter(torch.ones(2, 2), requires_grad=False)

    def forward(self, i):
        return self.norm(self.lin(self.emb(i)))


def test_adamw_decays_only_matrices_and_skips_frozen():
    net = _Net()
    opt = make_adamw(net, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), device=torch.device("cpu"))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(net.emb.weight), id(net.lin.weight)}
    assert {id(p) for p in no_decay["params"]} == {id(net.lin.bias), id(net.norm.weight), id(net.norm.bias)}
    set_lr(opt, 0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.5]


def test_schedule_warms_up_then_decays_monotonically_to_min():
    lrs = [lr_at(s, 50, 1.0, 0.1, 5) for s in range(50)]
    assert lrs[:5] == sorted(lrs[:5]) and lrs[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert lr_at(50, 50, 1.0, 0.1, 5) == pytest.approx(0.1)
    assert [s for s in range(10) if due(s, 4, 10)] == [3, 7, 9]


def test_cpu_runs_fp32_without_scaler_and_bad_devices_fail_early():
    autocast, scaler = autocast_and_scaler(torch.device("cpu"), "auto")
    assert scaler is None
    with autocast():
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "cuda:x"):
        with pytest.raises(ConfigError, match="unknown device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="not available"):
            resolve_device("cuda")
    assert DistEnv().is_main and not DistEnv(rank=1, world=2).is_main and DistEnv(world=2).distributed


def test_checkpoint_round_trip_restores_optimizer_and_rngs_and_resume_checks(tmp_path):
    torch.manual_seed(0)
    net = _Net()
    opt = make_adamw(net, 1e-2, 0.1, (0.9, 0.95), torch.device("cpu"))
    backward(net(torch.tensor([1, 2])).sum(), None)
    optimizer_step(opt, None)
    assert all(p.grad is None for p in net.parameters())
    out = str(tmp_path / "run")
    state = training_state(1, opt, None, [{"step": 1}], extra_thing=7)
    save_checkpoint(out, {k: v.detach().clone() for k, v in net.state_dict().items()}, state,
                    {"store_version": "v1"})
    expect_torch, expect_py = torch.rand(3), random.random()  # what follows the saved RNG state

    other = _Net()
    opt2 = make_adamw(other, 1e-2, 0.1, (0.9, 0.95), torch.device("cpu"))
    ckpt = find_resume(out, True, {"store_version": "v1"}, same_data=("store_version",))
    step, history = restore(ckpt, other, opt2, None, torch.device("cpu"))
    assert (step, history, ckpt.state["extra_thing"]) == (1, [{"step": 1}], 7)
    assert torch.equal(torch.rand(3), expect_torch) and random.random() == expect_py
    for a, b in zip(net.parameters(), other.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

    with pytest.raises(ConfigError, match="already holds checkpoints"):
        find_resume(out, False, {})
    with pytest.raises(ConfigError, match="store version v1, this run reads v2"):
        find_resume(out, True, {"store_version": "v2"}, same_data=("store_version",))

    def refuse(c):
        raise ConfigError(f"not this model: {c.step}")

    with pytest.raises(ConfigError, match="not this model: 1"):
        find_resume(out, True, {}, check=refuse)
    assert find_resume(str(tmp_path / "fresh"), False, {}) is None
    assert load_latest_good(out).step == 1


def test_rng_state_round_trip():
    st = rng_state()
    a = (torch.rand(2), random.random())
    set_rng_state(st)
    b = (torch.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and a[1] == b[1]
