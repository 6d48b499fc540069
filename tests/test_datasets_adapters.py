"""Each adapter on its synthetic layout: discovery, windows, labels (no Prefect, no store).

Expected numbers are computed here from the fixture's manifest (seconds,
events, stages, clip timings) with the reference's rules written out in the
test, never by calling the adapter's own helpers.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from neurolm.datasets import get_adapter
from neurolm.datasets.synth import synth_dataset


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    out = {}
    for name in ("tuab", "tuev", "tusl", "hmc", "workload", "seed"):
        root = tmp_path_factory.mktemp(name)
        out[name] = synth_dataset(name, root, seed=1, bad=True)
    return out


def run_adapter(name, manifest, **opts):
    """Discover, then window every discovered file with the n_samples a 200-Hz store would hold."""
    adapter = get_adapter(name, **opts)
    items, problems = adapter.discover(manifest["root"])
    secs = {f["path"]: f["seconds"] for f in manifest["files"]}
    rows, skipped = [], []
    for it in items:
        src = dict(it.extra)["source"]
        if src in secs:  # files the worker would quarantine have no entry
            rows += adapter.windows(it, {"n_samples": secs[src] * 200, "sfreq": 200.0}, skipped)
    return adapter, items, problems, rows, skipped


def rel_problems(manifest, problems):
    root = Path(manifest["root"])
    return {Path(p).relative_to(root).as_posix(): r for p, r in problems if Path(p).is_file()}


def by_source(rows):
    out = {}
    for r in rows:
        out.setdefault(r["source"], []).append(r)
    return out


def test_tuab(layouts):
    m = layouts["tuab"]
    adapter, items, problems, rows, _ = run_adapter("tuab", m)
    probs = rel_problems(m, problems)
    renamed = [b["path"] for b in m["bad"] if b["stage"] == "discover"]
    assert set(probs) == set(renamed) and "renamed" in probs[renamed[0]]
    got = by_source(rows)
    for f in m["files"]:
        n_win = f["seconds"] // 10  # 10-s windows, remainder dropped
        assert len(got[f["path"]]) == n_win
        assert [r["start"] for r in got[f["path"]]] == [2000 * i for i in range(n_win)]
        assert {r["label"] for r in got[f["path"]]} == {f["label"]}
        assert {r["official"] for r in got[f["path"]]} == {f["official"]}
        assert {r["subject"] for r in got[f["path"]]} == {f["subject_key"]}
    assert {r["label_name"] for r in rows} == {"normal", "abnormal"}
    it = items[0]
    assert it.channels[:3] == ("FP1", "FP2", "F3") and len(it.channels) == 23 and it.notch_hz == 50.0
    assert it.subject_key.startswith("tuh:") and it.recording_id.startswith("tuab-")


def tuev_expect(events, n, mode):
    """Reference rule written out: 1-s events, window = event ± 2 s, circular at the borders."""
    valid = [(c, a, b, lab) for c, a, b, lab in events if 1 <= lab <= 6 and b * 200 <= n]
    if mode == "reference":
        return sorted(((round(a * 200) - 400) % n, lab - 1) for _, a, _, lab in valid)
    groups = {}
    for _, a, _, lab in valid:
        groups.setdefault(a, []).append(lab - 1)
    out = []
    for a, labs in groups.items():
        pool = [x for x in labs if x != 5] or labs
        cnt = Counter(pool)
        best = max(cnt.values())
        out.append(((round(a * 200) - 400) % n, min(k for k, v in cnt.items() if v == best)))
    return sorted(out)


@pytest.mark.parametrize("mode", ["dedup", "reference"])
def test_tuev(layouts, mode):
    m = layouts["tuev"]
    adapter, items, problems, rows, skipped = run_adapter("tuev", m, mode=mode)
    probs = rel_problems(m, problems)
    assert set(probs) == {b["path"] for b in m["bad"] if b["stage"] == "discover"}
    assert any("no label file" in r for r in probs.values()) and any("line 2" in r for r in probs.values())
    got = by_source(rows)
    for f in m["files"]:
        n = f["seconds"] * 200
        want = tuev_expect(f["events"], n, mode)
        assert sorted((r["start"], r["label"]) for r in got.get(f["path"], [])) == want, f["path"]
        for r in got.get(f["path"], []):
            assert r["length"] == 1000 and r["wrap"] == (r["start"] + 1000 > n)
    plain = got[m["files"][0]["path"]]
    assert sum(r["wrap"] for r in plain) >= 2  # the events at 0.5 s and 29 s wrap around
    n_rows = sum(len(f["events"]) for f in m["files"])
    if mode == "reference":
        assert len(rows) == n_rows
    else:
        # an event marked with different labels on different channels is one conflict
        n_conflicts = sum(len({lab for _, a2, _, lab in f["events"] if a2 == a}) > 1
                          for f in m["files"] for a in {a for _, a, _, _ in f["events"]})
        assert n_conflicts > 0 and len(rows) < n_rows and adapter.conflicts == n_conflicts
    reasons = [r for _, r in skipped]
    assert any("unknown label code 9" in r for r in reasons)
    assert any("does not match the recording" in r for r in reasons)
    assert {r["label_name"] for r in rows} <= set(adapter.label_names)


def test_tusl(layouts):
    m = layouts["tusl"]
    _, _, problems, rows, skipped = run_adapter("tusl", m)
    assert problems == []
    codes = {"bckg": 0, "seiz": 1, "slow": 2}
    got = by_source(rows)
    for f in m["files"]:
        want = sorted((int(a * 200), codes[lab]) for a, b, lab in f["events"]
                      if b - a == 10 and b <= f["seconds"])
        assert sorted((r["start"], r["label"]) for r in got.get(f["path"], [])) == want
    bad = [b for b in m["bad"] if b["stage"] == "windows"][0]
    bad_reasons = [r for p, r in skipped if p.endswith(bad["path"])]
    assert len(bad_reasons) == bad["n_skipped"]
    assert sum("overlaps" in r for r in bad_reasons) == 2 and any("spkz" in r for r in bad_reasons)
    good = [f for f in m["files"] if f["events"]]
    n_short = sum(b - a == 7.5 for f in good for a, b, _ in f["events"])  # 7.5-s events of the good files
    assert n_short >= len(good) and sum("7.5 s long" in r for _, r in skipped) == n_short


def test_hmc(layouts):
    m = layouts["hmc"]
    adapter, items, problems, rows, skipped = run_adapter("hmc", m)
    assert [Path(i.path).name for i in items if "sleepscoring" in i.path] == []  # scoring EDFs are not recordings
    probs = rel_problems(m, problems)
    assert list(probs) == ["SN010.edf"] and "no scoring file" in probs["SN010.edf"]
    stage_code = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4}
    got = by_source(rows)
    for f in m["files"]:
        want = [(30 * 200 * i, stage_code[s]) for i, s in enumerate(f["stages"]) if s is not None]
        assert sorted((r["start"], r["label"]) for r in got.get(f["path"], [])) == want
    bad = [b for b in m["bad"] if b["stage"] == "windows"][0]
    assert len([r for p, r in skipped if p.endswith(bad["path"])]) == bad["n_skipped"]
    assert items[0].channels == ("F4", "C4", "O2", "C3")


def test_workload(layouts):
    m = layouts["workload"]
    _, items, problems, rows, skipped = run_adapter("workload", m)
    assert list(rel_problems(m, problems)) == ["Subject10.edf"]
    got = by_source(rows)
    for f in m["files"]:
        n = f["seconds"] * 200
        want = [(n - 12000 + 400 * k, f["label"]) for k in range(29)] if n >= 12000 else []
        assert [(r["start"], r["label"]) for r in got.get(f["path"], [])] == want
    long_enough = [f for f in m["files"] if f["seconds"] >= 60]
    assert len(rows) == 29 * len(long_enough) and any("shorter than 60 s" in r for _, r in skipped)
    assert {r["label_name"] for r in rows} == {"No", "Yes"}
    assert all(r["length"] == 800 for r in rows)


def test_seed(layouts):
    m = layouts["seed"]
    _, items, problems, rows, skipped = run_adapter("seed", m)
    assert list(rel_problems(m, problems)) == ["notes_about_session.cnt"]
    clips = m["clips"]
    name = {1: "Positive", 0: "Neutral", -1: "Negative"}
    got = by_source(rows)
    for f in m["files"]:
        n = f["seconds"] * 200
        want = []
        for k, (s, e, lab) in enumerate(zip(clips["start_s"], clips["end_s"], clips["labels"])):
            count = ((e - s + 1) * 200 - 800) // 800 + 1  # end second inclusive, 4-s windows, 4-s stride
            want += [(s * 200 + 800 * j, name[lab], k) for j in range(count) if s * 200 + 800 * (j + 1) <= n]
        assert [(r["start"], r["label_name"], r["trial"]) for r in got[f["path"]]] == want
    assert any("past the end" in r for _, r in skipped)
    assert len(items[0].channels) == 62 and "M1" not in items[0].channels
    assert [i.session for i in items] == ["1"] * len(items)


def test_label_rows_validate_against_schema(layouts):
    import pandas as pd

    from neurolm.datasets.ingest import to_frame
    from schemas.io import validate
    from schemas.tables import LABELS

    for name, m in layouts.items():
        adapter, _, _, rows, _ = run_adapter(name, m)
        df = to_frame(adapter.split(rows, "seeded", 0))
        validate(df, LABELS)
        assert isinstance(df, pd.DataFrame) and len(df) == len(rows) > 0


# NeuroLM's dataset_maker/prepare_SEED.py clip timings (NEUROLM_REFERENCE §1.4), written out here.
REF_START = [24, 289, 550, 782, 1049, 1260, 1483, 1747, 1993, 2283, 2550, 2812, 3072, 3332, 3598]
REF_END = [264, 526, 757, 1023, 1235, 1458, 1722, 1967, 2259, 2525, 2788, 3046, 3308, 3573, 3806]
REF_LABELS = [1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1]  # session order, SEED's 1/0/-1


def test_seed_reference_timings_give_855_windows_per_session(tmp_path):
    """A full-length session (3810 s, real CNT at a low rate) through discovery, the CNT header and windows()."""
    from neurolm.datasets.synth.other import write_seed_cnt
    from neurolm.readers import read_header

    write_seed_cnt(tmp_path / "1_20131027.cnt", 3810, seed=0, sfreq=20.0, labels=["FP1", "FPZ"])
    adapter = get_adapter("seed")
    items, problems = adapter.discover(tmp_path)  # no seed_trials.json: the built-in timings
    assert problems == [] and len(items) == 1 and dict(items[0].extra)["cnt_format"] == "int32"
    head = read_header(items[0].path, dict(items[0].extra)["cnt_format"])
    assert head.format == "cnt" and head.n_samples == 3810 * 20
    rows = adapter.windows(items[0], {"n_samples": head.n_samples, "sfreq": head.ch_sfreqs[0]})
    per_clip = Counter(r["trial"] for r in rows)
    # clip k spans seconds start..end inclusive: (end - start + 1) s cut into 4-s windows, 4-s stride
    assert [per_clip[k] for k in range(15)] == [(e - s + 1) // 4 for s, e in zip(REF_START, REF_END)]
    assert len(rows) == 855 and 45 * len(rows) == 38_475  # the paper's SEED count: 45 sessions
    assert [r["start"] for r in rows if r["trial"] == 0][:2] == [24 * 200, 24 * 200 + 800]
    assert max(r["start"] + r["length"] for r in rows) == 3806 * 200
    want = Counter()
    for s, e, lab in zip(REF_START, REF_END, REF_LABELS):
        want[{1: "Positive", 0: "Neutral", -1: "Negative"}[lab]] += (e - s + 1) // 4
    assert Counter(r["label_name"] for r in rows) == want


def test_hmc_uses_only_30_s_rows(tmp_path):
    """Like the reference, only Duration = 30 rows are epochs: lights off/on (0 s) and other lengths are not."""
    (tmp_path / "SN001.edf").write_bytes(b"")  # discovery and windows() never open the signal
    rows = [(0, 0, "Lights off"), (0, 30, "Sleep stage W"), (30, 30, "Sleep stage N1"),
            (45, 15, "Sleep stage N3"), (60, 30, "Sleep stage N2"), (60, 0, "Arousal"),
            (90, 30, "Sleep stage ?"), (120, 0, "Lights on")]
    (tmp_path / "SN001_sleepscoring.txt").write_text(
        "Date, Time, Recording onset, Duration, Annotation, Linked channel\n"
        + "".join(f"2001-01-01, 22:00:00, {o}, {d}, {a}, \n" for o, d, a in rows))
    adapter = get_adapter("hmc")
    items, problems = adapter.discover(tmp_path)
    skipped = []
    got = adapter.windows(items[0], {"n_samples": 120 * 200, "sfreq": 200.0}, skipped)
    assert problems == [] and [(r["start"], r["label_name"]) for r in got] == [
        (0, "Wake"), (30 * 200, "NREM-1"), (60 * 200, "NREM-2")]
    assert [r for _, r in skipped] == ["epoch at 90 s: unknown sleep stage 'Sleep stage ?'"]


def test_onset_seconds_to_samples(tmp_path):
    """How event onsets in seconds become 200-Hz sample indices, per dataset (values worked out by hand).

    TUEV: the first sample at or after the onset (the reference's np.where(times >= t)[0][0]);
    TUSL and HMC: floor(onset x 200), tolerant of float noise (0.7 x 200 = 139.99999999999997).
    """
    tusl = tmp_path / "tusl"
    tusl.mkdir()
    (tusl / "aaaaaaab_s001_t000.edf").write_bytes(b"")
    (tusl / "aaaaaaab_s001_t000.tse_agg").write_text(
        "version = tse_v1.0.0\n\n0.7 10.7 bckg 1.0\n12.3456 22.3456 seiz 1.0\n")
    adapter = get_adapter("tusl")
    items, _ = adapter.discover(tusl)
    got = adapter.windows(items[0], {"n_samples": 30 * 200, "sfreq": 200.0}, [])
    assert [(r["start"], r["length"]) for r in got] == [(140, 2000), (2469, 2000)]  # 12.3456 s -> 2469.12

    tuev = tmp_path / "tuev" / "train" / "aaaaaaab"
    tuev.mkdir(parents=True)
    (tuev / "aaaaaaab_00000001.edf").write_bytes(b"")
    (tuev / "aaaaaaab_00000001.rec").write_text("0,5.0021,6.0021,1\n1,10.0,11.0,6\n")
    adapter = get_adapter("tuev")
    items, _ = adapter.discover(tmp_path / "tuev")
    got = adapter.windows(items[0], {"n_samples": 30 * 200, "sfreq": 200.0}, [])
    # 5.0021 s = sample 1000.42 -> 1001 (first sample at or after it), window = event +- 2 s
    assert [(r["start"], r["length"]) for r in got] == [(1001 - 400, 1000), (2000 - 400, 1000)]

    hmc = tmp_path / "hmc"
    hmc.mkdir()
    (hmc / "SN002.edf").write_bytes(b"")
    (hmc / "SN002_sleepscoring.txt").write_text(
        "Date, Time, Recording onset, Duration, Annotation, Linked channel\n"
        "2001-01-01, 22:00:00, 0.7, 30, Sleep stage W, \n2001-01-01, 22:00:30, 30.7049, 30, Sleep stage R, \n")
    adapter = get_adapter("hmc")
    items, _ = adapter.discover(hmc)
    got = adapter.windows(items[0], {"n_samples": 90 * 200, "sfreq": 200.0}, [])
    assert [r["start"] for r in got] == [140, 6140]  # 30.7049 s = sample 6140.98 -> 6140
