"""Fixtures imitating the TUH downstream corpora: TUAB, TUEV and TUSL.

Faithful where it matters to the adapters: folder names, TUH file names
(``aaaaaaab_s001_t000``, TUEV ``aaaaaaab_00000001`` and eval ``spsw_032_a_``),
``EEG FP1-REF``-style labels with the non-EEG channels real files carry
(``EEG EKG1-REF``, ``PHOTIC-REF``), 250 Hz, and label files in the real
syntax. Recordings are 20-60 s so the whole layout ingests in seconds (two
TUAB files are 60 s: long enough for one 23-channel pretraining window).
"""

from __future__ import annotations

from pathlib import Path

from neurolm.datasets.synth.common import rel, write_edf_file, write_text
from neurolm.vocab import TUH_23

SFREQ = 250.0
TUH_LABELS = [f"EEG {c}-REF" for c in TUH_23] + ["EEG EKG1-REF", "PHOTIC-REF"]


def _subj(i: int) -> str:
    """8-letter TUH subject id: aaaaaaab, aaaaaaac, ..."""
    return "aaaaaa" + "abcdefghijklmnopqrstuvwxyz"[i // 26] + "abcdefghijklmnopqrstuvwxyz"[i % 26 + 0]


def synth_tuab(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    plan = [  # (official folder, label folder, subject index, seconds)
        ("train", "abnormal", 1, 25), ("train", "abnormal", 2, 31), ("train", "abnormal", 3, 60),
        ("train", "normal", 4, 22), ("train", "normal", 5, 35), ("train", "normal", 6, 20),
        ("eval", "abnormal", 7, 60), ("eval", "normal", 8, 26),
    ]
    for k, (official, label, si, secs) in enumerate(plan):
        sub = _subj(si)
        p = root / "edf" / official / label / "01_tcp_ar" / f"{sub}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, secs, seed * 100 + k)
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=secs,
                          official=official, label=int(label == "abnormal")))
    if bad:
        p = root / "edf" / "train" / "abnormall" / "01_tcp_ar" / f"{_subj(9)}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 20, seed * 100 + 50)
        bad_cases.append(dict(path=rel(root, p), case="renamed label folder", stage="discover"))
        p = root / "edf" / "train" / "normal" / "01_tcp_ar" / f"{_subj(10)}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS[:-4] + TUH_LABELS[-2:], SFREQ, 20, seed * 100 + 51)  # no T1/T2
        bad_cases.append(dict(path=rel(root, p), case="missing channels T1, T2", stage="ingest"))
    return dict(files=files, bad=bad_cases)


# TUEV events (channel, start_s, end_s, label 1-6) of a 30-s recording, per kind:
TUEV_EVENTS = {
    "plain": [(0, 3.0, 4.0, 6), (1, 3.0, 4.0, 6), (2, 3.0, 4.0, 6),  # one event on 3 channels
              (5, 10.0, 11.0, 1), (6, 10.0, 11.0, 6),  # conflict: spsw vs bckg -> spsw
              (3, 15.0, 16.0, 4), (4, 15.0, 16.0, 5), (7, 15.0, 16.0, 5),  # conflict: eyem vs 2x artf -> artf
              (1, 0.5, 1.5, 4),  # starts within 2 s of the start: wraps to the end
              (2, 29.0, 30.0, 5)],  # ends at the end: wraps to the start
    "eval": [(0, 5.0, 6.0, 1), (1, 5.0, 6.0, 1), (2, 12.0, 13.0, 3), (3, 20.0, 21.0, 2)],
}


def rec_text(events) -> str:
    return "".join(f"{c},{a:.4f},{b:.4f},{lab}\n" for c, a, b, lab in events)


def synth_tuev(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    train = [(_subj(i), 30) for i in (1, 2, 3, 4)]
    for k, (sub, secs) in enumerate(train):
        p = root / "edf" / "train" / sub / f"{sub}_00000001.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, secs, seed * 100 + k)
        write_text(p.with_suffix(".rec"), rec_text(TUEV_EVENTS["plain"]))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=secs, official="train",
                          events=TUEV_EVENTS["plain"]))
    p = root / "edf" / "eval" / "032" / "spsw_032_a_.edf"
    write_edf_file(p, TUH_LABELS, SFREQ, 30, seed * 100 + 9)
    write_text(p.with_suffix(".rec"), rec_text(TUEV_EVENTS["eval"]))
    files.append(dict(path=rel(root, p), subject_key="tuh:tuev_eval_032", seconds=30, official="eval",
                      events=TUEV_EVENTS["eval"]))
    if bad:
        sub = _subj(20)
        p = root / "edf" / "train" / sub / f"{sub}_00000001.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 30, seed * 100 + 20)
        events = [(0, 5.0, 6.0, 9), (1, 8.0, 9.0, 2)]  # code 9 unknown; the other is kept
        write_text(p.with_suffix(".rec"), rec_text(events))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=30, official="train",
                          events=[events[1]]))
        bad_cases.append(dict(path=rel(root, p), case="unknown label code 9", stage="windows", n_skipped=1))
        sub = _subj(21)
        p = root / "edf" / "train" / sub / f"{sub}_00000001.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 20, seed * 100 + 21)
        write_text(p.with_suffix(".rec"), rec_text([(0, 40.0, 41.0, 6), (1, 50.0, 51.0, 6)]))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=20, official="train", events=[]))
        bad_cases.append(dict(path=rel(root, p), case="label file does not match recording (events past end)",
                              stage="windows", n_skipped=3))
        sub = _subj(22)
        p = root / "edf" / "train" / sub / f"{sub}_00000001.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 20, seed * 100 + 22)
        bad_cases.append(dict(path=rel(root, p), case="no .rec label file", stage="discover"))
        sub = _subj(23)
        p = root / "edf" / "train" / sub / f"{sub}_00000001.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 20, seed * 100 + 23)
        write_text(p.with_suffix(".rec"), "0,1.0,2.0,6\nthis is not a rec row\n")
        bad_cases.append(dict(path=rel(root, p), case="unparsable .rec", stage="discover"))
    return dict(files=files, bad=bad_cases)


def tse_text(events) -> str:
    return "version = tse_v1.0.0\n\n" + "".join(f"{a:.4f} {b:.4f} {lab} 1.0000\n" for a, b, lab in events)


TUSL_EVENTS = [(0.0, 10.0, "bckg"), (10.0, 20.0, "seiz"), (20.0, 30.0, "slow"), (30.0, 37.5, "bckg")]


def synth_tusl(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    for k in range(5):
        sub = _subj(k + 1)
        p = root / "edf" / sub / "s001_2010_01_01" / "01_tcp_ar" / f"{sub}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 38, seed * 100 + k)
        write_text(p.with_suffix(".tse_agg"), tse_text(TUSL_EVENTS))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=38, events=TUSL_EVENTS))
    if bad:
        sub = _subj(20)
        p = root / "edf" / sub / "s001_2010_01_01" / "01_tcp_ar" / f"{sub}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 38, seed * 100 + 20)
        events = [(0.0, 10.0, "bckg"), (5.0, 15.0, "seiz"), (20.0, 30.0, "spkz"), (30.0, 40.0, "slow")]
        write_text(p.with_suffix(".tse_agg"), tse_text(events))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=38, events=[]))
        bad_cases.append(dict(path=rel(root, p), stage="windows", n_skipped=4,
                              case="overlapping events with different labels, unknown label, event past end"))
    return dict(files=files, bad=bad_cases)
