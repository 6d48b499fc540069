"""Subject-wise splits, the held-out registry and NeuroLM pretraining windows."""

from __future__ import annotations

import collections
import json

import numpy as np
import pandas as pd
import pytest

from neurolm.errors import ConfigError
from neurolm.ingest.splits import assign_split, split_for
from neurolm.ingest.windows import build_windows, recording_windows, window_samples, window_seconds
from storage.heldout import load_heldout, register_heldout


def test_split_is_deterministic_and_stable_under_added_subjects():
    subjects = [f"s{i:03d}" for i in range(400)]
    first = {s: assign_split(7, "ds", s) for s in subjects}
    more = {s: assign_split(7, "ds", s) for s in subjects + [f"new{i}" for i in range(200)]}
    assert all(first[s] == more[s] for s in subjects)  # adding subjects moves no one
    counts = collections.Counter(first.values())
    assert 0.72 < counts["train"] / 400 < 0.88 and counts["val"] > 20 and counts["test"] > 20
    other_seed = {s: assign_split(8, "ds", s) for s in subjects}
    assert other_seed != first  # the seed matters
    other_ds = {s: assign_split(7, "other", s) for s in subjects}
    assert other_ds != first  # so does the dataset


def test_split_fractions_edge_cases():
    assert {assign_split(0, "d", f"x{i}", (1.0, 0.0, 0.0)) for i in range(50)} == {"train"}
    assert {assign_split(0, "d", f"x{i}", (0.0, 0.0, 1.0)) for i in range(50)} == {"test"}


def test_heldout_registry_roundtrip_and_split(tmp_path):
    store = str(tmp_path / "store")
    assert load_heldout(store) == set()
    assert register_heldout(store, ["tuh:aaaaakfo", "tuh:aaaaabbb"], "TUAB eval subject", "test") == 2
    assert register_heldout(store, ["tuh:aaaaakfo", "tuh:zzzzzzzz"], "other", "test") == 1
    held = load_heldout(store)
    assert held == {"tuh:aaaaakfo", "tuh:aaaaabbb", "tuh:zzzzzzzz"}
    doc = json.loads((tmp_path / "store" / "heldout.json").read_text())
    assert doc["subjects"]["tuh:aaaaakfo"]["reason"] == "TUAB eval subject"  # first reason kept
    assert split_for(0, "tueg", "aaaaakfo", "tuh:aaaaakfo", held) == "heldout"
    assert split_for(0, "tueg", "cccccccc", "tuh:cccccccc", held) in {"train", "val", "test"}
    with pytest.raises(ConfigError):
        register_heldout(store, ["no-family"], "x", "test")


def test_window_rule_matches_neurolm():
    assert window_seconds(19) == 53 and window_seconds(23) == 44 and window_seconds(32) == 32
    assert window_seconds(4) == 64 and window_seconds(139) == 7  # capped at the 64-row temporal embedding
    assert window_samples(23) == 44 * 200
    # 23 ch, 200 s: crop 10 s -> 190 s usable -> 4 windows of 44 s, remainder dropped.
    wins = recording_windows(23, 200 * 200, crop_end_s=10)
    assert wins == [(i * 8800, 8800) for i in range(4)]
    assert recording_windows(23, 50 * 200) == []  # 40 s usable < 44 s


def test_build_windows_excludes_heldout():
    rec = pd.DataFrame({
        "recording_id": ["b", "a", "h"], "n_channels": [32, 32, 32], "n_samples": [80 * 200, 110 * 200, 500 * 200],
        "split": ["val", "train", "heldout"],
    })
    w = build_windows(rec)
    assert list(w["recording_id"]) == ["a", "a", "a", "b", "b"]
    assert list(w["start"]) == [0, 6400, 12800, 0, 6400]
    assert set(w["length"]) == {6400}
    assert "h" not in set(w["recording_id"])
    assert len(build_windows(rec, exclude_heldout=False)) == 5 + (490 * 200) // 6400


def _windows_one_by_one(rec: pd.DataFrame, crop_end_s: float, exclude_heldout: bool) -> list[tuple]:
    """The rule row by row, through ``recording_windows`` (what build_windows must equal)."""
    rows = []
    for rid, n_ch, n, split in rec[["recording_id", "n_channels", "n_samples", "split"]].itertuples(index=False):
        if not (exclude_heldout and split == "heldout"):
            rows.extend((rid, s, ln, split) for s, ln in recording_windows(int(n_ch), int(n), crop_end_s))
    return sorted(rows, key=lambda r: (r[0], r[1]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_build_windows_equals_the_rule_recording_by_recording(seed):
    rng = np.random.default_rng(seed)
    n = 300
    rec = pd.DataFrame({
        "recording_id": [f"r{int(i)}" for i in rng.permutation(n)],
        "n_channels": rng.choice([1, 3, 15, 16, 19, 21, 23, 64, 128], n),
        "n_samples": rng.integers(0, 200 * 3600, n),  # empty to 1 h: many too short for one window
        "split": rng.choice(["train", "val", "test", "heldout", None], n),
    })
    for crop in (0.0, 10.0, 12.5):
        for exclude in (True, False):
            got = build_windows(rec, crop, exclude)
            assert list(got.columns) == ["recording_id", "start", "length", "split"]
            assert got["start"].dtype == np.int64 and got["length"].dtype == np.int64
            assert list(got.itertuples(index=False, name=None)) == _windows_one_by_one(rec, crop, exclude)
    assert build_windows(rec.iloc[:0]).empty
    assert build_windows(rec[rec["split"] == "heldout"]).empty
