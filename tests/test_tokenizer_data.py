"""Tokenizer samples: layout, masks, time-major order, and the targets against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurolm.errors import ConfigError
from neurolm.tokenizer.data import ArraySampleDataset, build_sample, make_targets, training_sample
from neurolm.vocab import PAD_INDEX


def _signal(n_ch: int, n_sec: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_ch, n_sec * 200)).astype(np.float32)


def test_build_sample_layout_is_time_major_and_padded():
    sig = _signal(3, 5)
    ch = [0, 17, 88]
    s = build_sample(sig, ch)
    assert s["x"].shape == (1024, 200) and s["x"].dtype == torch.float32
    assert s["ch"].dtype == torch.long and s["time"].dtype == torch.long and s["mask"].dtype == torch.bool
    n = 15
    assert s["mask"][:n].all() and not s["mask"][n:].any()
    # token k = t*n_ch + c is channel c at second t
    for k in range(n):
        t, c = divmod(k, 3)
        assert s["ch"][k] == ch[c] and s["time"][k] == t
        np.testing.assert_array_equal(s["x"][k].numpy(), sig[c, t * 200:(t + 1) * 200])
    assert (s["ch"][n:] == PAD_INDEX).all() and (s["time"][n:] == 0).all() and (s["x"][n:] == 0).all()


def test_build_sample_drops_partial_patch_and_rejects_overflow():
    sig = np.ones((2, 450), dtype=np.float32)  # 2 whole seconds + 50 samples
    s = build_sample(sig, [1, 2], max_tokens=8)
    assert int(s["mask"].sum()) == 4
    with pytest.raises(ConfigError, match="max_tokens"):
        build_sample(_signal(5, 2), list(range(5)), max_tokens=8)
    with pytest.raises(ConfigError, match="channel indices"):
        build_sample(_signal(2, 2), [1])


def test_targets_match_hand_computed_numpy_and_ignore_padding():
    sig = _signal(2, 3, seed=1) * 3 + 0.5
    s = build_sample(sig, [0, 2], max_tokens=10)
    y = make_targets(s["x"], s["mask"], freq_bins=100)
    patches = sig.reshape(2, 3, 200).transpose(1, 0, 2).reshape(6, 200).astype(np.float64)
    amp = np.abs(np.fft.fft(patches, axis=-1))
    exp_freq = ((amp - amp.mean()) / amp.std())[:, :100]
    exp_raw = (patches - patches.mean()) / patches.std()
    np.testing.assert_allclose(y["y_freq"][:6].numpy(), exp_freq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y["y_raw"][:6].numpy(), exp_raw, rtol=1e-5, atol=1e-5)
    assert (y["y_freq"][6:] == 0).all() and (y["y_raw"][6:] == 0).all()
    # padding does not take part: the same sample padded further gives the same valid targets
    y2 = make_targets(*(lambda b: (b["x"], b["mask"]))(build_sample(sig, [0, 2], max_tokens=40)))
    np.testing.assert_array_equal(y2["y_freq"][:6].numpy(), y["y_freq"][:6].numpy())


def test_flat_sample_gives_finite_targets():
    s = training_sample(np.zeros((2, 400), dtype=np.float32), [0, 1], max_tokens=8)
    assert torch.isfinite(s["y_freq"]).all() and torch.isfinite(s["y_raw"]).all()


def test_array_dataset_items_have_targets():
    ds = ArraySampleDataset([(_signal(2, 4), (0, 2))], max_tokens=16)
    item = ds[0]
    assert set(item) == {"x", "ch", "time", "mask", "y_freq", "y_raw"}
    assert item["y_freq"].shape == (16, 100) and item["y_raw"].shape == (16, 200)
