"""Split rules: the reference's paper protocol (default) and seeded (stable subject-wise hash).

Paper rules are checked on synthetic row lists (HMC's 151 recordings need no
files); the expected splits are written out from the reference's rule here.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from neurolm.datasets import get_adapter
from neurolm.datasets.base import drop_overlaps
from neurolm.datasets.tuev import resolve
from neurolm.errors import ConfigError


def rows_for(sources, subject=lambda s: s, **extra):
    return [{"source": s, "subject": subject(s), "official": "", "trial": -1, "label": 0, **extra} for s in sources]


def test_hmc_paper_sorted_100_25_rest():
    names = [f"SN{i:03d}.edf" for i in range(1, 155) if i not in (15, 48, 120)]  # 151 recordings
    shuffled = list(np.random.default_rng(3).permutation(names))
    rows = rows_for(shuffled)
    out = get_adapter("hmc").split(rows, "paper")
    side = {r["source"]: r["split"] for r in out}
    assert Counter(side.values()) == {"train": 100, "val": 25, "test": 26}
    ordered = sorted(names)
    assert all(side[n] == "train" for n in ordered[:100])
    assert all(side[n] == "val" for n in ordered[100:125]) and all(side[n] == "test" for n in ordered[125:])


def test_hmc_paper_keeps_places_of_files_without_windows():
    names = [f"SN{i:03d}.edf" for i in range(1, 152)]
    rows = rows_for(names[1:])  # SN001 has no windows (quarantined) but still takes its place
    out = get_adapter("hmc").split(rows, "paper", universe=names)
    side = {r["source"]: r["split"] for r in out}
    assert side["SN100.edf"] == "train" and side["SN101.edf"] == "val" and side["SN126.edf"] == "test"


def test_workload_paper_52_62():
    names = [f"Subject{s:02d}_{c}.edf" for s in range(36) for c in (1, 2)]
    out = get_adapter("workload").split(rows_for(names[::-1]), "paper")
    side = {r["source"]: r["split"] for r in out}
    ordered = sorted(names)
    assert [side[n] for n in ordered] == ["train"] * 52 + ["val"] * 10 + ["test"] * 10
    subj = lambda n: n.split("_")[0]  # noqa: E731 - subject-wise: both files of a subject on one side
    assert all(len({side[n] for n in names if subj(n) == s}) == 1 for s in {subj(n) for n in names})


def test_tusl_paper_60_20_20_on_seeded_shuffle_of_sorted_files():
    names = [f"f{i:02d}.edf" for i in range(10)]
    for seed in (0, 3):
        out = get_adapter("tusl").split(rows_for(names[::-1]), "paper", seed=seed)
        side = {r["source"]: r["split"] for r in out}
        order = sorted(names)  # the reference's os.walk order is arbitrary: sorted, then RandomState(seed)
        np.random.RandomState(seed).shuffle(order)
        assert [side[n] for n in order] == ["train"] * 6 + ["test"] * 2 + ["val"] * 2
    again = get_adapter("tusl").split(rows_for(names), "paper", seed=3)  # input order does not matter
    assert {r["source"]: r["split"] for r in again} == side
    assert "os.walk" in get_adapter("tusl").paper_notes


def test_default_split_is_the_papers_protocol():
    from neurolm.datasets import DATASETS
    from neurolm.datasets.ingest import DatasetIngestParams

    names = [f"SN{i:03d}.edf" for i in range(151)]
    assert get_adapter("hmc").split(rows_for(names)) == get_adapter("hmc").split(rows_for(names), "paper")
    assert DatasetIngestParams(dataset="hmc", root=".", store="s").split == "paper"
    for name in DATASETS:
        adapter = get_adapter(name)
        assert adapter.protocol("paper").startswith("paper (NeuroLM's evaluation protocol)")
        assert "subject-wise" in adapter.protocol("seeded", 4) and "seed 4" in adapter.protocol("seeded", 4)
        with pytest.raises(ConfigError):
            adapter.protocol("random")


def test_cli_split_default_is_paper():
    import argparse

    from neurolm.cli import datasets as cli_datasets

    parser = argparse.ArgumentParser()
    cli_datasets.register(parser.add_subparsers())
    args = parser.parse_args(["ingest-dataset", "hmc", "/data/hmc", "--store", "s"])
    assert args.split == "paper"
    assert parser.parse_args(["ingest-dataset", "hmc", "r", "--store", "s", "--split", "seeded"]).split == "seeded"


def test_seed_paper_by_trial():
    rows = [{"source": "1_x.cnt", "subject": "seed:1", "trial": t, "n_trials": 15, "official": ""} for t in range(15)]
    out = get_adapter("seed").split(rows, "paper")
    assert [r["split"] for r in out] == ["train"] * 9 + ["val"] * 3 + ["test"] * 3


def test_tuev_paper_reproduces_seed_4523_choice():
    subs = [f"tuh:{c}" for c in ("aaaaaaab", "aaaaaaac", "aaaaaaad", "aaaaaaae", "aaaaaaaf", "aaaaaaag",
                                 "aaaaaaah", "aaaaaaai", "aaaaaaaj", "aaaaaaak", "aaaaaaal")]
    rows = [{"source": s, "subject": s, "official": "train", "label": 0} for s in subs[::-1]]
    rows.append({"source": "ev", "subject": "tuh:tuev_eval_032", "official": "eval", "label": 0})
    np.random.seed(4523)  # the reference's global-state calls on the sorted subject list
    val = set(np.random.choice(sorted(subs), size=int(len(subs) * 0.2), replace=False))
    out = get_adapter("tuev").split(rows, "paper", seed=99)  # the reference's seed is fixed
    side = {r["subject"]: r["split"] for r in out}
    assert {s for s, v in side.items() if v == "val"} == val and len(val) == 2
    assert side["tuh:tuev_eval_032"] == "test"


def test_tuab_paper_per_class_seeded_80_20():
    rows = []
    for label, subs in ((1, [f"tuh:a{i:07d}" for i in range(10)]), (0, [f"tuh:n{i:07d}" for i in range(5)])):
        rows += [{"source": s, "subject": s, "official": "train", "label": label} for s in subs]
    rows.append({"source": "e", "subject": "tuh:eeeeeeee", "official": "eval", "label": 1})
    out = get_adapter("tuab").split(rows, "paper", seed=7)
    for label, n_train in ((1, 8), (0, 4)):
        subs = sorted(r["subject"] for r in rows if r["label"] == label and r["official"] == "train")
        rs = np.random.RandomState(7)
        rs.shuffle(subs)
        got = {r["subject"]: r["split"] for r in out if r["label"] == label and r["official"] == "train"}
        assert {s for s, v in got.items() if v == "train"} == set(subs[:n_train])
    assert [r["split"] for r in out if r["official"] == "eval"] == ["test"]


def expected_side(seed, dataset, subject, fractions):
    """The hash rule written out: u = sha256("seed:dataset:subject"), train | val | test edges in that order."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{dataset}:{subject}".encode()).digest()[:8], "big") / 2.0**64
    f_train, f_val, _ = fractions
    return "train" if u < f_train else ("val" if u < f_train + f_val else "test")


def test_seeded_split_is_a_stable_subject_hash():
    adapter = get_adapter("hmc")
    subs = [f"SN{i:03d}" for i in range(400)]
    rows = [{"subject": f"hmc:{s}", "subject_id": s, "dataset": "hmc", "official": "", "source": s}
            for s in subs for _ in range(2)]
    out = adapter.split(rows, "seeded", seed=5)
    side = {r["subject_id"]: r["split"] for r in out}
    assert all(side[s] == expected_side(5, "hmc", s, adapter.seeded_fractions) for s in subs)
    assert len({(r["subject"], r["split"]) for r in out}) == 400  # subject-wise: both rows agree
    frac = Counter(side.values())
    assert abs(frac["train"] / 400 - 0.66) < 0.08 and frac["val"] > 40 and frac["test"] > 40
    extra = {"subject": "hmc:SN999", "subject_id": "SN999", "dataset": "hmc", "official": "", "source": "x"}
    more = adapter.split(rows + [extra], "seeded", seed=5)
    assert {r["subject_id"]: r["split"] for r in more if r["subject_id"] != "SN999"} == side  # nobody moves
    assert adapter.split(rows, "seeded", seed=6) != out


def test_seeded_split_matches_the_recordings_split_of_ingestion():
    from neurolm.ingest.splits import assign_split

    adapter = get_adapter("workload")
    rows = [{"subject": f"workload:S{i}", "subject_id": f"S{i}", "dataset": "workload", "official": ""}
            for i in range(50)]
    out = adapter.split(rows, "seeded", seed=3)
    assert [r["split"] for r in out] == [assign_split(3, "workload", f"S{i}", adapter.seeded_fractions)
                                         for i in range(50)]


def test_seeded_split_keeps_official_eval_as_test():
    rows = [{"subject": f"tuh:s{i:07d}", "subject_id": f"s{i:07d}", "dataset": "tuab",
             "official": "train" if i < 50 else "eval", "source": ""} for i in range(60)]
    out = get_adapter("tuab").split(rows, "seeded", seed=0)
    assert all(r["split"] == "test" for r in out if r["official"] == "eval")
    assert [r["split"] for r in out if r["official"] == "train"] == [
        expected_side(0, "tuab", r["subject_id"], (0.8, 0.2, 0.0)) for r in rows if r["official"] == "train"]
    assert {r["split"] for r in out if r["official"] == "train"} == {"train", "val"}
    with pytest.raises(ConfigError):
        get_adapter("tuab").split(rows, "random")


def test_drop_overlaps_and_tuev_conflict_rule():
    kept, msgs = drop_overlaps([(0, 100, 1), (50, 150, 2), (200, 300, 0), (200, 300, 0), (250, 350, 0)])
    assert kept == [(200, 300, 0), (250, 350, 0)] and len(msgs) == 3
    assert resolve([5, 5, 0]) == (0, True)  # bckg yields to the event seen on any channel
    assert resolve([3, 4, 4]) == (4, True) and resolve([2, 1]) == (1, True) and resolve([5, 5]) == (5, False)
