"""Fixtures imitating SEED, HMC and Workload (EEGMAT).

SEED: a session is a real Neuroscan ``.cnt`` (``1_20131027.cnt``, int32
samples, written by `neurolm.synth.cnt_writer`), so the worker takes MNE's CNT
path with the SEED items' ``cnt_format=int32``, like the reference; 62+5
channels at 1000 Hz. The 15 clips are shortened (3-9 s instead of ~4 min)
through ``seed_trials.json``, the adapter's documented timing override.

HMC: ``SNxxx.edf`` with the PSG montage labels (``EEG F4-M1`` ..., EMG, EOG,
ECG) at 256 Hz, ``SNxxx_sleepscoring.txt`` in the PhysioNet CSV syntax with
Lights off/on rows, and the ``SNxxx_sleepscoring.edf`` that the release ships
(an annotation file the adapter must not take for a recording).

Workload: ``SubjectXX_{1,2}.edf`` with EEGMAT's labels (``EEG Fp1`` ...,
``EEG A2-A1``, ``ECG ECG``) at 500 Hz; rest files are longer than task files.
"""

from __future__ import annotations

import json
from pathlib import Path

from neurolm.datasets.seed import CHANNELS_62, SESSION_LABELS
from neurolm.datasets.synth.common import rel, write_edf_file, write_text
from neurolm.synth.cnt_writer import write_cnt
from neurolm.synth.signal import synth_signal

SEED_SFREQ = 1000.0
SEED_LABELS = list(CHANNELS_62[:32]) + ["M1"] + list(CHANNELS_62[32:41]) + ["M2"] + list(CHANNELS_62[41:]) + [
    "VEO", "HEO", "ECG"]


def seed_clips() -> tuple[list[int], list[int]]:
    """Short clip timings: durations 3,5,7,9,... s separated by 1-s gaps, from 2 s."""
    start, end, t = [], [], 2
    for k in range(15):
        d = 3 + (k % 4) * 2
        start.append(t)
        end.append(t + d)
        t += d + 1
    return start, end


def write_seed_cnt(path: Path, seconds: float, seed: int, sfreq: float = SEED_SFREQ,
                   labels: list[str] | None = None) -> Path:
    """One SEED session as a Neuroscan CNT 3.0 file (int32 samples) of synthetic EEG."""
    names = list(labels or SEED_LABELS)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = synth_signal(len(names), sfreq, seconds, seed, ch_names=names, mains_hz=50.0)
    return write_cnt(path, data, sfreq, names)


def synth_seed(root: Path, seed: int, bad: bool) -> dict:
    start, end = seed_clips()
    write_text(root / "seed_trials.json", json.dumps({"start_s": start, "end_s": end,
                                                      "labels": list(SESSION_LABELS)}))
    secs = end[-1] + 3
    files, bad_cases = [], []
    for k, (sub, date) in enumerate([("1", "20131027"), ("2", "20140404"), ("3", "20140603")]):
        p = root / f"{sub}_{date}.cnt"
        write_seed_cnt(p, secs, seed * 100 + k)
        files.append(dict(path=rel(root, p), subject_key=f"seed:{sub}", seconds=secs))
    if bad:
        p = root / "4_20140101.cnt"
        write_seed_cnt(p, 60, seed * 100 + 20)
        files.append(dict(path=rel(root, p), subject_key="seed:4", seconds=60))
        bad_cases.append(dict(path=rel(root, p), case="recording ends before the last clips", stage="windows"))
        p = root / "notes_about_session.cnt"
        write_text(p, "not a recording")
        bad_cases.append(dict(path=rel(root, p), case="misnamed file", stage="discover"))
    return dict(files=files, bad=bad_cases, clips=dict(start_s=start, end_s=end, labels=list(SESSION_LABELS)))


HMC_LABELS = ["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EMG chin", "EOG E1-M2", "EOG E2-M2", "ECG"]
HMC_STAGES = ["W", "W", "N1", "N2", "N2", "N3", "N3", "R", "N2", "W"]


def scoring_text(stages: list[str], extra_rows: list[tuple[float, float, str]] = ()) -> str:
    rows = [(0.0, 0.0, "Lights off")] + [(30.0 * i, 30.0, f"Sleep stage {s}") for i, s in enumerate(stages)]
    rows += list(extra_rows) + [(30.0 * len(stages), 0.0, "Lights on")]
    head = "Date, Time, Recording onset, Duration, Annotation, Linked channel\n"
    return head + "".join(f"2001-01-01, 22:{int(o // 60) % 60:02d}:{int(o % 60):02d}, {o:g}, {d:g}, {a}, \n"
                          for o, d, a in rows)


def synth_hmc(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    secs = 30 * len(HMC_STAGES) + 5
    for k in range(4):
        p = root / f"SN{k + 1:03d}.edf"
        write_edf_file(p, HMC_LABELS, 256.0, secs, seed * 100 + k, mains_hz=50.0)
        write_text(root / f"SN{k + 1:03d}_sleepscoring.txt", scoring_text(HMC_STAGES))
        write_edf_file(root / f"SN{k + 1:03d}_sleepscoring.edf", ["Annotations"], 1.0, 10, 0)
        files.append(dict(path=rel(root, p), subject_key=f"hmc:SN{k + 1:03d}", seconds=secs,
                          stages=list(HMC_STAGES)))
    if bad:
        p = root / "SN010.edf"
        write_edf_file(p, HMC_LABELS, 256.0, secs, seed * 100 + 10, mains_hz=50.0)
        bad_cases.append(dict(path=rel(root, p), case="no scoring file", stage="discover"))
        p = root / "SN011.edf"
        write_edf_file(p, HMC_LABELS, 256.0, 125, seed * 100 + 11, mains_hz=50.0)  # 4 epochs fit
        stages = ["W", "N1", "X", "N2", "N2", "N3"]  # 'X' unknown; epochs 4, 5 past the end
        write_text(root / "SN011_sleepscoring.txt",
                   scoring_text(stages, [(30.0, 30.0, "Sleep stage N3")]))  # overlaps epoch 1 (N1)
        files.append(dict(path=rel(root, p), subject_key="hmc:SN011", seconds=125, stages=["W", None, None, "N2"]))
        bad_cases.append(dict(path=rel(root, p), stage="windows", n_skipped=5,
                              case="unknown stage, overlapping epochs, epochs past end"))
    return dict(files=files, bad=bad_cases)


WL_LABELS = [f"EEG {c}" for c in ("Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4",
                                  "T5", "T6", "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz")] + ["EEG A2-A1", "ECG ECG"]


def synth_workload(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    for s in range(3):
        for cond, secs in ((1, 75), (2, 62)):
            p = root / f"Subject{s:02d}_{cond}.edf"
            write_edf_file(p, WL_LABELS, 500.0, secs, seed * 100 + 2 * s + cond, mains_hz=50.0)
            files.append(dict(path=rel(root, p), subject_key=f"workload:Subject{s:02d}", seconds=secs,
                              label=cond - 1))
    if bad:
        p = root / "Subject09_2.edf"
        write_edf_file(p, WL_LABELS, 500.0, 30, seed * 100 + 30, mains_hz=50.0)
        files.append(dict(path=rel(root, p), subject_key="workload:Subject09", seconds=30, label=1))
        bad_cases.append(dict(path=rel(root, p), case="shorter than 60 s", stage="windows", n_skipped=1))
        p = root / "Subject10.edf"
        write_edf_file(p, WL_LABELS, 500.0, 62, seed * 100 + 31, mains_hz=50.0)
        bad_cases.append(dict(path=rel(root, p), case="misnamed file", stage="discover"))
    return dict(files=files, bad=bad_cases)
