"""Fixtures imitating SEED, HMC and Workload (EEGMAT).

SEED: a session is a real Neuroscan ``.cnt`` (``1_20131027.cnt``, int32
samples, written by `neurolm.synth.cnt_writer`), so the worker takes MNE's CNT
path with the SEED items' ``cnt_format=int32``, like the reference; 62+5
channels, written at 250 Hz to keep the layout small (real SEED: 1000 Hz,
``write_seed_cnt``'s default). The 15 clips are shortened (11-17 s, not ~4 min)
through ``seed_trials.json``, the adapter's documented timing override.

HMC: ``SNxxx.edf`` with the PSG montage labels (``EEG F4-M1`` ..., EMG, EOG,
ECG) at 256 Hz, ``SNxxx_sleepscoring.txt`` in the PhysioNet CSV syntax with
Lights off/on rows, and the ``SNxxx_sleepscoring.edf`` that the release ships
(an annotation file the adapter must not take for a recording).

Workload: ``SubjectXX_{1,2}.edf`` with EEGMAT's labels (``EEG Fp1`` ...,
``EEG A2-A1``, ``ECG ECG``) at 500 Hz; rest files are longer than task files.

Labels are learnable (see ``common.py``): SEED positive = frontal 20-Hz beta,
neutral = posterior 10-Hz alpha, negative = frontal 5-Hz theta; HMC W = alpha
plus fast activity, N1 = 6-Hz theta, N2 = 13-Hz spindle-band activity, N3 =
1.2-Hz delta, R = 3-Hz "sawtooth" waves plus 20-Hz fast activity; Workload rest = posterior
alpha, arithmetic = frontal theta plus beta. HMC and Workload subjects are
chosen so that ``--split seeded`` (seed 0) puts at least one subject in each of
train/val/test (their paper protocol cuts 100+ recordings: all of ours would be
train); SEED's and the TUH corpora's paper protocols already fill every split.
"""

from __future__ import annotations

import json
from pathlib import Path

from neurolm.datasets.seed import CHANNELS_62, LABEL_OF, SESSION_LABELS
from neurolm.datasets.synth.common import Pattern, class_signal, rel, write_class_edf, write_edf_file, write_text
from neurolm.synth.cnt_writer import write_cnt
from neurolm.synth.signal import synth_signal

SEED_SFREQ = 1000.0
SEED_LABELS = list(CHANNELS_62[:32]) + ["M1"] + list(CHANNELS_62[32:41]) + ["M2"] + list(CHANNELS_62[41:]) + [
    "VEO", "HEO", "ECG"]


SEED_SYNTH_SFREQ = 250.0  # the fixture's sessions (real SEED: 1000 Hz); keeps the layout small
SEED_PATTERNS = {0: Pattern("sine", 20.0, 50.0, "frontal", off=0.5),  # positive: frontal beta
                 1: Pattern("sine", 10.0, 50.0, "posterior", off=0.5),  # neutral: alpha
                 2: Pattern("sine", 5.0, 60.0, "frontal", off=0.5)}  # negative: frontal theta


def seed_clips() -> tuple[list[int], list[int]]:
    """Short clip timings: durations 11-17 s (3-4 windows of 4 s) separated by 1-s gaps, from 2 s."""
    start, end, t = [], [], 2
    for k in range(15):
        d = 11 + (k % 4) * 2
        start.append(t)
        end.append(t + d)
        t += d + 1
    return start, end


def write_seed_cnt(path: Path, seconds: float, seed: int, sfreq: float = SEED_SFREQ,
                   labels: list[str] | None = None, segments=None) -> Path:
    """One SEED session as a Neuroscan CNT 3.0 file (int32 samples) of synthetic EEG.

    ``segments`` ((start_s, end_s, Pattern) of the clips) make the clips' emotions visible in the signal.
    """
    names = list(labels or SEED_LABELS)
    path.parent.mkdir(parents=True, exist_ok=True)
    if segments is None:
        data = synth_signal(len(names), sfreq, seconds, seed, ch_names=names, mains_hz=50.0)
    else:
        data = class_signal(names, sfreq, seconds, seed, segments, mains_hz=50.0)
    return write_cnt(path, data, sfreq, names)


def seed_segments(start: list[int], end: list[int]) -> list:
    """Each clip (end second inclusive) carries its emotion's pattern."""
    return [(s, e + 1, SEED_PATTERNS[LABEL_OF[lab]]) for s, e, lab in zip(start, end, SESSION_LABELS)]


def synth_seed(root: Path, seed: int, bad: bool) -> dict:
    start, end = seed_clips()
    write_text(root / "seed_trials.json", json.dumps({"start_s": start, "end_s": end,
                                                      "labels": list(SESSION_LABELS)}))
    secs = end[-1] + 3
    files, bad_cases = [], []
    for k, (sub, date) in enumerate([("1", "20131027"), ("2", "20140404"), ("3", "20140603")]):
        p = root / f"{sub}_{date}.cnt"
        write_seed_cnt(p, secs, seed * 100 + k, sfreq=SEED_SYNTH_SFREQ, segments=seed_segments(start, end))
        files.append(dict(path=rel(root, p), subject_key=f"seed:{sub}", seconds=secs))
    if bad:
        p = root / "4_20140101.cnt"
        write_seed_cnt(p, 60, seed * 100 + 20, sfreq=SEED_SYNTH_SFREQ)
        files.append(dict(path=rel(root, p), subject_key="seed:4", seconds=60))
        bad_cases.append(dict(path=rel(root, p), case="recording ends before the last clips", stage="windows"))
        p = root / "notes_about_session.cnt"
        write_text(p, "not a recording")
        bad_cases.append(dict(path=rel(root, p), case="misnamed file", stage="discover"))
    return dict(files=files, bad=bad_cases, clips=dict(start_s=start, end_s=end, labels=list(SESSION_LABELS)))


HMC_LABELS = ["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EMG chin", "EOG E1-M2", "EOG E2-M2", "ECG"]
HMC_STAGES = ["W", "W", "N1", "N2", "N2", "N3", "N3", "R", "N2", "W",
              "N1", "R", "N3", "N1", "R", "W", "N2", "N3", "R", "N1"]  # each stage 4 times
HMC_PATTERNS = {"W": (Pattern("sine", 10.0, 40.0, "posterior", off=0.6), Pattern("noise", 30.0, 15.0, width=6.0)),
                "N1": Pattern("sine", 6.0, 45.0),
                "N2": Pattern("noise", 13.0, 45.0, width=1.5),
                "N3": Pattern("sine", 1.2, 90.0),
                "R": (Pattern("sine", 3.0, 50.0), Pattern("noise", 20.0, 30.0, width=4.0))}
#: subjects whose seeded split (seed 0, fractions .66/.17/.17) is train x5, val (SN009), test (SN015)
HMC_SUBJECTS = (1, 2, 3, 4, 5, 9, 15)


def scoring_text(stages: list[str], extra_rows: list[tuple[float, float, str]] = ()) -> str:
    rows = [(0.0, 0.0, "Lights off")] + [(30.0 * i, 30.0, f"Sleep stage {s}") for i, s in enumerate(stages)]
    rows += list(extra_rows) + [(30.0 * len(stages), 0.0, "Lights on")]
    head = "Date, Time, Recording onset, Duration, Annotation, Linked channel\n"
    return head + "".join(f"2001-01-01, 22:{int(o // 60) % 60:02d}:{int(o % 60):02d}, {o:g}, {d:g}, {a}, \n"
                          for o, d, a in rows)


def synth_hmc(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    secs = 30 * len(HMC_STAGES) + 5
    for k, num in enumerate(HMC_SUBJECTS):
        stages = HMC_STAGES[k % 5:] + HMC_STAGES[:k % 5]  # the same stages, in another order per night
        segments = [(30.0 * i, 30.0 * (i + 1), HMC_PATTERNS[st]) for i, st in enumerate(stages)]
        p = root / f"SN{num:03d}.edf"
        write_class_edf(p, HMC_LABELS, 256.0, secs, seed * 100 + k, segments, mains_hz=50.0)
        write_text(root / f"SN{num:03d}_sleepscoring.txt", scoring_text(stages))
        write_edf_file(root / f"SN{num:03d}_sleepscoring.edf", ["Annotations"], 1.0, 10, 0)
        files.append(dict(path=rel(root, p), subject_key=f"hmc:SN{num:03d}", seconds=secs, stages=list(stages)))
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


WL_PATTERNS = {1: Pattern("sine", 10.0, 50.0, "posterior", off=0.5),  # rest: alpha
               2: (Pattern("sine", 6.0, 50.0, "frontal", off=0.5), Pattern("noise", 22.0, 20.0, width=4.0))}
#: subjects whose seeded split (seed 0, fractions .72/.14/.14) is train x3, val (03), test (23)
WL_SUBJECTS = (0, 1, 2, 3, 23)


def synth_workload(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    for s in WL_SUBJECTS:
        for cond, secs in ((1, 75), (2, 62)):
            p = root / f"Subject{s:02d}_{cond}.edf"
            write_class_edf(p, WL_LABELS, 500.0, secs, seed * 100 + 2 * s + cond, [(0.0, secs, WL_PATTERNS[cond])],
                            mains_hz=50.0)
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
