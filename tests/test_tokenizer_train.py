"""Tokenizer training: resumed runs follow the same trajectory, losses fall, errors come before work."""

from __future__ import annotations

import pytest
import torch

from neurolm.errors import ConfigError
from neurolm.tokenizer import load_tokenizer, preset, train_preset
from neurolm.tokenizer.synthetic import rhythm_dataset
from neurolm.tokenizer.train import train
from neurolm.training import StepBatchSampler, lr_at
from storage.checkpoints import list_checkpoints

CFG = preset("tiny", max_tokens=32)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-identical reductions between runs
    yield
    torch.set_num_threads(n)


def _losses(history):
    return [(h["step"], h["total"], h["freq"], h["raw"], h["commit"], h["domain_eeg"]) for h in history]


def test_resumed_run_continues_the_same_trajectory(tmp_path):
    ds = rhythm_dataset(12, n_ch=4, seconds=8, max_tokens=32)
    tc = train_preset("tiny", steps=6, batch_size=2, log_every=1, ckpt_every=3, warmup_steps=2,
                      dead_code_every=2, text_seq_len=16)
    full = train(CFG, tc, ds, str(tmp_path / "full"))
    part = train(CFG, tc, ds, str(tmp_path / "part"), stop_after=5)  # "killed" at step 5, last checkpoint at 3
    assert part.steps == 5 and [s for s, _ in list_checkpoints(str(tmp_path / "part"))] == [3]
    resumed = train(CFG, tc, ds, str(tmp_path / "part"))
    assert _losses(resumed.history) == _losses(full.history)
    a, b = load_tokenizer(str(tmp_path / "full")), load_tokenizer(str(tmp_path / "part"))
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(v, w), k


def test_losses_fall_on_distinct_rhythms_and_codebook_is_reported(tmp_path):
    torch.manual_seed(0)
    ds = rhythm_dataset(48, n_ch=4, seconds=8, max_tokens=32)
    tc = train_preset("tiny", steps=120, batch_size=8, log_every=20, ckpt_every=1000)
    res = train(CFG, tc, ds, str(tmp_path / "run"))
    first, last = res.history[0], res.history[-1]
    assert last["freq"] < 0.85 * first["freq"], (first, last)
    assert last["raw"] < first["raw"] and last["total"] < first["total"]
    for h in res.history:
        assert 0 < h["usage"] <= 1 and h["perplexity"] >= 1 and h["dead"] >= 0
    assert sum(h["reseeded"] for h in res.history) > 0  # re-seeding ran and is reported
    assert last["usage"] > 0.05  # not collapsed onto a handful of codes


def test_errors_before_work(tmp_path):
    ds = rhythm_dataset(6, n_ch=4, seconds=8, max_tokens=32)
    tc = train_preset("tiny", steps=2, batch_size=2, ckpt_every=2, text_seq_len=8)
    out = str(tmp_path / "run")
    train(CFG, tc, ds, out)
    with pytest.raises(ConfigError, match="config hash"):
        train(preset("tiny", max_tokens=32, encoder_attention="full"), tc, ds, out)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(CFG, tc, ds, out, resume=False)
    # a GPU this machine lacks: "not available" without CUDA, "does not exist" with it (same check on both)
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ConfigError, match="not available" if not torch.cuda.is_available() else "does not exist"):
        train(CFG, tc, ds, str(tmp_path / "other"), device=missing)
    for bad in ("tpu", "cuda:x"):
        with pytest.raises(ConfigError, match="unknown device"):
            train(CFG, tc, ds, str(tmp_path / "other"), device=bad)
    assert not (tmp_path / "other").exists()  # refused before any work


def test_batch_order_is_a_function_of_step_only():
    a = StepBatchSampler(10, 3, 2, seed=1, start=0, total=5)
    b = StepBatchSampler(10, 3, 2, seed=1, start=3, total=5)
    assert list(a)[6:] == list(b)
    flat = [i for batch in list(a)[:4] for i in batch][:10]
    assert sorted(flat) == list(range(10))  # an epoch is a permutation
    r0 = StepBatchSampler(10, 2, 1, seed=1, start=0, total=2, rank=0, world=2)
    r1 = StepBatchSampler(10, 2, 1, seed=1, start=0, total=2, rank=1, world=2)
    assert not set(r0.batch(0, 0)) & set(r1.batch(0, 0))


def test_lr_schedule_warmup_then_cosine_to_min():
    assert lr_at(0, 100, 1.0, 0.1, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 0.1, 10) == pytest.approx(1.0)
    assert lr_at(55, 100, 1.0, 0.1, 10) == pytest.approx(0.55)
    assert lr_at(100, 100, 1.0, 0.1, 10) == pytest.approx(0.1)


KILL_SCRIPT = """
import sys, time, torch
torch.set_num_threads(1)
from neurolm.tokenizer import preset, train_preset
from neurolm.tokenizer.synthetic import rhythm_dataset
from neurolm.tokenizer.train import train
tc = train_preset("tiny", steps=8, batch_size=2, log_every=1, ckpt_every=2, warmup_steps=2, dead_code_every=3,
                  text_seq_len=16)
train(preset("tiny", max_tokens=32), tc, rhythm_dataset(12, n_ch=4, seconds=8, max_tokens=32), sys.argv[1],
      on_step=lambda s, n: time.sleep(0.4))  # slow steps: the test kills it mid-run
"""


def test_kill_9_mid_run_then_resume_equals_uninterrupted(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "killed"
    script = tmp_path / "train_script.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not (out / "ckpt-000000004" / "manifest.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    done = [s for s, _ in list_checkpoints(str(out))]
    assert done and done[-1] < 8, done  # really killed before the end
    tc = train_preset("tiny", steps=8, batch_size=2, log_every=1, ckpt_every=2, warmup_steps=2, dead_code_every=3,
                      text_seq_len=16)
    ds = rhythm_dataset(12, n_ch=4, seconds=8, max_tokens=32)
    resumed = train(CFG, tc, ds, str(out))
    full = train(CFG, tc, ds, str(tmp_path / "full"))
    assert _losses(resumed.history) == _losses(full.history)


def test_gradient_accumulation_consumes_micro_batches(tmp_path):
    ds = rhythm_dataset(8, n_ch=4, seconds=8, max_tokens=32)
    tc = train_preset("tiny", steps=2, batch_size=1, grad_accum=3, log_every=1, ckpt_every=2, text_seq_len=8)
    res = train(CFG, tc, ds, str(tmp_path / "acc"))
    assert res.patches == 2 * 3 * 1 * 32 and len(res.history) == 2
    assert all(torch.isfinite(torch.tensor(h["total"])) for h in res.history)


def test_tiny_preset_encoder_does_not_collapse_on_synthetic_eeg(tmp_path):
    """On 19-channel synthetic EEG (brain states, band-passed, µV/100 as the store holds it) the tiny preset's
    encoder keeps patches apart: with the original's commitment weight 1 every patch of a sample mapped to one
    code-space direction within 60 steps (mean pairwise cosine 0.999), so codes hashed rounding noise (issue 12)."""
    import numpy as np
    import torch.nn.functional as F
    from scipy.signal import butter, sosfiltfilt

    from neurolm.synth import default_ch_names, synth_signal
    from neurolm.tokenizer.data import ArraySampleDataset
    from neurolm.tokenizer.synthetic import DEFAULT_CHANNELS

    sos = butter(4, [0.1, 75], btype="bandpass", fs=200, output="sos")
    windows = []
    for seed in range(6):
        x = synth_signal(19, 200.0, 130, seed, ch_names=list(default_ch_names(19)), mains_hz=None)
        x = (sosfiltfilt(sos, x, axis=-1) / 100).astype(np.float32)
        windows += [(x[:, k * 2600:(k + 1) * 2600], DEFAULT_CHANNELS) for k in range(10)]
    ds = ArraySampleDataset(windows, max_tokens=256)
    torch.manual_seed(0)
    res = train(preset("tiny"), train_preset("tiny", steps=60, ckpt_every=1000, log_every=20), ds, str(tmp_path))
    tok = load_tokenizer(res.out_dir).eval()
    cos = []
    for i in range(0, len(ds), 6):
        b = ds[i]
        m = b["mask"]
        with torch.no_grad():
            feats = tok.VQ.encoder(b["x"][None], b["ch"][None], b["time"][None], m[None])
            z = F.normalize(tok.VQ.encode_task_layer(feats), dim=-1)[0][m]
        cos.append(float((z @ z.T).mean()))
    assert sum(cos) / len(cos) < 0.8
    assert res.history[-1]["raw"] < 0.98 * res.history[0]["raw"]  # the codes carry something of each patch
