"""The dataset ingestion library without Prefect: two datasets into one store, bad inputs, reruns.

Uses the real batch worker and Zarr store in this process (the flow only
swaps the batch mapper for Prefect tasks on Dask, tested in test_datasets_flow).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from neurolm.datasets.ingest import ingest_dataset, make_dataset_params
from neurolm.datasets.report import label_counts, render_text
from neurolm.datasets.synth import synth_dataset
from storage.heldout import load_heldout
from storage.signal_store import SignalStore


def hashed_side(seed, dataset, subject, fractions):
    """sha256("seed:dataset:subject") -> u in [0, 1); train | val | test edges in that order."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{dataset}:{subject}".encode()).digest()[:8], "big") / 2.0**64
    return "train" if u < fractions[0] else ("val" if u < fractions[0] + fractions[1] else "test")


def test_hmc_and_tusl_into_one_store(tmp_path):
    store_url = str(tmp_path / "store")
    hmc = synth_dataset("hmc", tmp_path / "hmc", seed=3, bad=True)
    s1 = ingest_dataset(make_dataset_params(dataset="hmc", root=hmc["root"], store=store_url, seed=4,
                                            split="seeded"))  # subject-wise, by name
    store = SignalStore.open(store_url)
    assert s1["outputs"] == {"store": store.url, "store_version": store.version_id}
    labels = store.read_table("labels")
    want = {f["path"]: sum(s is not None for s in f["stages"]) for f in hmc["files"]}
    assert labels.groupby("source").size().to_dict() == want
    for src, grp in labels.groupby("source"):
        subject = Path(src).stem  # HMC subject = recording name
        assert set(grp["split"]) == {hashed_side(4, "hmc", subject, (0.66, 0.17, 0.17))}
    rec = store.read_table("recordings").set_index("recording_id")
    for rid, sp in labels.groupby("recording_id")["split"].first().items():
        assert rec.loc[rid, "split"] == sp  # one split per recording in RECORDINGS and LABELS
    cat = store.read_table("catalog").set_index("path")
    sn010 = str(Path(hmc["root"]) / "SN010.edf")
    assert cat.loc[sn010, "status"] == "quarantined" and "no scoring file" in cat.loc[sn010, "reason"]
    assert s1["skips"]["n_events_skipped"] == 5 and s1["skips"]["n_files_rejected"] == 1
    assert s1["n_heldout_registered"] == 0 and load_heldout(store_url) == set()
    text = render_text(s1)
    assert "split protocol: seeded (subject-wise" in text
    assert "91,248" in text and "SN011.edf" in text and "unknown sleep stage" in text

    tusl = synth_dataset("tusl", tmp_path / "tusl", seed=3, bad=True)
    s2 = ingest_dataset(make_dataset_params(dataset="tusl", root=tusl["root"], store=store_url, split="paper"))
    both = SignalStore.open(store_url).read_table("labels")
    assert both[both["task"] == "HMC"].reset_index(drop=True).equals(labels)  # the other task is kept
    t = both[both["task"] == "TUSL"]
    n_events = sum(b - a == 10 for f in tusl["files"] for a, b, _ in f["events"])  # 10-s events of good files
    assert len(t) == n_events and s2["n_labels"] == n_events
    sources = sorted(f["path"] for f in tusl["files"])  # the discovered files, sorted, shuffled with seed 0
    np.random.RandomState(0).shuffle(sources)  # then int(.6 n) train, int(.8 n) - int(.6 n) test, rest val
    n = len(sources)
    side = dict(zip(sources, ["train"] * int(0.6 * n) + ["test"] * (int(0.8 * n) - int(0.6 * n))
                    + ["val"] * (n - int(0.8 * n))))
    assert all(side[src] == sp for src, sp in zip(t["source"], t["split"]))
    test_keys = {f["subject_key"] for f in tusl["files"] if side[f["path"]] == "test" and f["events"]}
    assert test_keys and test_keys <= load_heldout(store_url)
    counts = label_counts(store_url)
    assert set(counts["task"]) == {"HMC", "TUSL"} and int(counts["n"].sum()) == len(both)

    # Rerun HMC in paper mode: no signal is re-ingested, only its labels change (5 recordings < 100: train).
    s3 = ingest_dataset(make_dataset_params(dataset="hmc", root=hmc["root"], store=store_url, split="paper"))
    assert s3["n_ingested"] == 0 and s3["n_skipped_unchanged"] == len(hmc["files"])
    final = SignalStore.open(store_url).read_table("labels")
    assert set(final.loc[final["task"] == "HMC", "split"]) == {"train"}
    assert final[final["task"] == "TUSL"].reset_index(drop=True).equals(t.reset_index(drop=True))

    # A scoring file deleted after ingestion: its labels go, its stored signal and rows stay.
    (Path(hmc["root"]) / "SN001_sleepscoring.txt").unlink()
    s4 = ingest_dataset(make_dataset_params(dataset="hmc", root=hmc["root"], store=store_url))  # paper default
    assert s4["split_mode"] == "paper"
    after = SignalStore.open(store_url)
    assert "SN001.edf" not in set(after.read_table("labels")["source"])
    assert any("no scoring file" in r for r in s4["skips"]["per_file"][str(Path(hmc["root"]) / "SN001.edf")])
    rid = next(r for r in after.read_table("recordings")["recording_id"] if "sn001" in r)
    assert after.is_committed(rid)


def test_bad_arguments_fail_before_any_work(tmp_path, capsys):
    import pytest

    from neurolm.cli import main
    from neurolm.datasets import get_adapter
    from neurolm.errors import ConfigError

    store = tmp_path / "store"
    for kwargs, needle in (({"dataset": "tuabx", "root": str(tmp_path)}, "unknown dataset"),
                           ({"dataset": "tuab", "root": str(tmp_path / "missing")}, "not a directory"),
                           ({"dataset": "tuab", "root": str(tmp_path), "workers": 0}, "workers must be >= 1"),
                           ({"dataset": "tuev", "root": str(tmp_path), "tuev_mode": "all"}, "tuev_mode")):
        with pytest.raises(ConfigError, match=needle):
            make_dataset_params(store=str(store), **kwargs)
    with pytest.raises(ConfigError):
        get_adapter("tuev", mode="every-row")
    with pytest.raises(ConfigError):
        synth_dataset("chbmit", tmp_path / "x")
    assert main(["ingest-dataset", "hmc", str(tmp_path / "nope"), "--store", str(store)]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert not store.exists()  # nothing was created


def test_file_renamed_out_of_the_layout(tmp_path):
    """A renamed file is rejected with its reason; the old path is 'removed' with its signal kept."""
    m = synth_dataset("workload", tmp_path / "wl", seed=5)
    store_url = str(tmp_path / "store")
    params = make_dataset_params(dataset="workload", root=m["root"], store=store_url)
    first = ingest_dataset(params)
    assert first["n_labels"] == 29 * len(m["files"])
    victim = Path(m["root"]) / m["files"][0]["path"]
    victim.rename(victim.with_name("Subject00.edf"))  # renamed: no longer a SubjectXX_{1,2}.edf
    second = ingest_dataset(params)
    assert second["n_ingested"] == 0  # the renamed file is rejected by discovery, nothing to read
    store = SignalStore.open(store_url)
    cat = store.read_table("catalog").set_index("path")
    assert cat.loc[str(victim), "status"] == "removed"  # its committed signal is kept
    assert cat.loc[str(victim.with_name("Subject00.edf")), "status"] == "quarantined"
    labels = store.read_table("labels")
    assert len(labels) == 29 * (len(m["files"]) - 1) and m["files"][0]["path"] not in set(labels["source"])
    reasons = second["skips"]["per_file"][str(victim.with_name("Subject00.edf"))]
    assert any("not a Workload recording name" in r for r in reasons)


def test_tuev_wrapped_windows_read_back(tmp_path):
    """A border event's 5-s window continues at the recording's start (the reference's 3x tiling)."""
    import numpy as np

    from neurolm.datasets.windows import iter_label_windows

    from neurolm.fanout import local_map

    m = synth_dataset("tuev", tmp_path / "tuev", seed=6)
    store_url = str(tmp_path / "store")
    seen = []

    def batches_after_checking_registry(*args):  # held out BEFORE any signal is written (kill-safe)
        seen.append(load_heldout(store_url))
        local_map(*args)

    ingest_dataset(make_dataset_params(dataset="tuev", root=m["root"], store=store_url, tuev_mode="reference"),
                   batches_after_checking_registry)
    assert seen == [{"tuh:tuev_eval_032"}]
    store = SignalStore.open(store_url)
    rows = list(iter_label_windows(store, "TUEV"))
    assert len(rows) == sum(len(f["events"]) for f in m["files"])
    wrapped = [(r, w) for r, w in rows if r["wrap"]]
    assert wrapped and all(w.shape == (23, 1000) for _, w in rows)
    for r, w in wrapped:
        full = store.read_signal(r["recording_id"])
        n = full.shape[1]
        tiled = np.concatenate([full, full, full], axis=1)  # the reference's border handling
        assert np.array_equal(w, tiled[:, n + r["start"]:n + r["start"] + 1000])
        assert full[:, r["start"]:r["start"] + 1000].shape[1] < 1000  # a naive read would come up short


def test_seed_cnt_is_read_as_int32(tmp_path):
    """SEED sessions go through MNE's CNT reader with int32 samples, as the reference reads them.

    A header whose sample count is twice the real one makes MNE's 'auto' width
    pick int16 and return garbage without an error; with int32 that file fails
    loudly and is quarantined instead of stored.
    """
    import json
    import struct

    import numpy as np

    from neurolm.datasets.seed import CHANNELS_62
    from neurolm.datasets.synth.other import SEED_LABELS, write_seed_cnt
    from neurolm.readers import read_recording

    root = tmp_path / "seed"
    root.mkdir()
    (root / "seed_trials.json").write_text(json.dumps({"start_s": [0, 4, 8], "end_s": [3, 7, 11],
                                                       "labels": [1, 0, -1]}))
    good = write_seed_cnt(root / "1_20131027.cnt", 12, seed=1)
    broken = write_seed_cnt(root / "2_20131030.cnt", 12, seed=2)
    with open(broken, "r+b") as fh:  # Neuroscan SETUP: number of samples, int32 at byte 864
        fh.seek(864)
        n = struct.unpack("<i", fh.read(4))[0]
        fh.seek(864)
        fh.write(struct.pack("<i", 2 * n))

    exact = read_recording(good, cnt_format="int32")
    again = read_recording(good)  # a sane header: 'auto' agrees
    assert exact.data.shape == (len(SEED_LABELS), 12_000) and np.array_equal(exact.data, again.data)
    guessed = read_recording(broken)  # 'auto': int16 guessed from the doubled count, no error
    assert guessed.data.shape[1] == 2 * 12_000

    store_url = str(tmp_path / "store")
    s = ingest_dataset(make_dataset_params(dataset="seed", root=str(root), store=store_url))
    assert s["n_labels"] == 3 and s["split_mode"] == "paper"
    store = SignalStore.open(store_url)
    labels = store.read_table("labels")
    assert list(labels["split"]) == ["train", "val", "test"]  # clips 0 / 1 / 2 of 3: int(.6 n), int(.8 n)
    rec = store.read_table("recordings").set_index("source_path")
    assert rec.loc[str(good), "ch_names"].split(",") == list(CHANNELS_62)
    assert rec.loc[str(good), "duration_s"] == 12.0
    cat = store.read_table("catalog").set_index("path")
    assert cat.loc[str(broken), "status"] == "quarantined" and "cnt reader failed" in cat.loc[str(broken), "reason"]
    assert "split protocol: paper (NeuroLM's evaluation protocol)" in render_text(s)
    # the forced width is part of what decides the stored samples: a SEED file read before is read again
    import dataclasses

    from neurolm.datasets import get_adapter
    from neurolm.ingest.worker import ingest_key

    item = get_adapter("seed").discover(str(root))[0][0]
    auto = dataclasses.replace(item, extra=tuple(kv for kv in item.extra if kv[0] != "cnt_format"))
    assert ingest_key("cfg", item) != ingest_key("cfg", auto)


def test_extra_channels_in_fixed_montage_datasets_are_dropped_not_the_file(tmp_path):
    """A file with channels beyond the fixed montage keeps the montage, in the reference's order.

    The reference drops a hand-written list of channels, reorders only when
    exactly the montage is left, and logs any other file as an error (excluded).
    We keep such a file: extra channels are dropped and recorded with a reason
    (docs/DEVIATIONS.md); a missing montage channel still quarantines it.
    """
    from neurolm.datasets import get_adapter
    from neurolm.datasets.synth.common import write_edf_file
    from neurolm.ingest import open_store, process_batch

    cases = {  # dataset: (raw labels with extras, shuffled, rate, seconds, the reference's montage written out)
        "tuab": ([f"EEG {c}-REF" for c in ("OZ", "T2", "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
                                          "F7", "F8", "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ", "T1",
                                          "EKG1", "FPZ")],
                 250.0, 12, ["FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3", "T4",
                             "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ", "T1", "T2"]),
        "workload": ([f"EEG {c}" for c in ("Oz", "Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5",
                                           "T6", "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz", "A2-A1")] + ["ECG ECG"],
                     500.0, 62, ["FP1", "FP2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6", "P3", "P4",
                                 "O1", "O2", "FZ", "CZ", "PZ"]),
        "hmc": (["EEG O1-M2", "EEG C3-M2", "EEG F4-M1", "EMG chin", "EEG C4-M1", "EEG O2-M1", "ECG"],
                256.0, 35, ["F4", "C4", "O2", "C3"]),
    }
    store = open_store(str(tmp_path / "store"))
    for name, (labels, sfreq, secs, montage) in cases.items():
        m = synth_dataset(name, tmp_path / name, seed=7)
        adapter = get_adapter(name)
        item = adapter.discover(m["root"])[0][0]
        write_edf_file(item.path, labels, sfreq, secs, seed=11)  # the same file, with extra channels
        [row] = process_batch([item], store.url, store.version_id, run_id=name)
        assert row["status"] == "ingested", row["reason"]
        assert row["recording_row"]["ch_names"].split(",") == montage
        dropped = dict(store.recording_meta(item.recording_id)["attrs"]["dropped_channels"])
        extra_site = labels[0]  # OZ / Oz / O1-M2: a real EEG site, but not in the montage
        assert "not in the selected channel set" in dropped[extra_site]
        assert len(dropped) == len(labels) - len(montage)
    short = [lab for lab in cases["hmc"][0] if "C3" not in lab]  # one montage channel missing
    m = synth_dataset("hmc", tmp_path / "hmc2", seed=7)
    item = get_adapter("hmc").discover(m["root"])[0][0]
    write_edf_file(item.path, short, 256.0, 35, seed=12)
    [row] = process_batch([item], store.url, store.version_id, run_id="short")
    assert row["status"] == "quarantined" and "missing channels" in row["reason"] and "C3" in row["reason"]
    assert row["recording_row"] is None  # nothing stored for it
