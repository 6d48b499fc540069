"""Fixtures imitating the TUH downstream corpora: TUAB, TUEV and TUSL.

Faithful where it matters to the adapters: folder names, TUH file names
(``aaaaaaab_s001_t000``, TUEV ``aaaaaaab_00000001`` and eval ``spsw_032_a_``),
``EEG FP1-REF``-style labels with the non-EEG channels real files carry
(``EEG EKG1-REF``, ``PHOTIC-REF``), 250 Hz, and label files in the real
syntax. Recordings are 50-130 s so each layout ingests in seconds.

Labels are learnable (see ``common.py``): TUAB normal = posterior 10-Hz alpha,
abnormal = diffuse 2.5-Hz delta; TUEV's event (from 1.5 s before to 1.5 s after its
second, so 4 s of each 5-s window; events are 6 s apart) carries spike-and-wave
(spsw), generalized 2-Hz periodic waves (gped), left-sided 1-Hz sharp discharges (pled), a frontal
slow deflection (eyem), 25-Hz muscle noise (artf) or nothing (bckg); TUSL
background = alpha, seizure = 4-Hz spike-and-wave, slowing = 1.5-Hz delta.
Every split of the paper protocol holds every class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurolm.datasets.synth.common import Pattern, rel, write_class_edf, write_edf_file, write_text
from neurolm.vocab import TUH_23

SFREQ = 250.0
TUH_LABELS = [f"EEG {c}-REF" for c in TUH_23] + ["EEG EKG1-REF", "PHOTIC-REF"]


def _subj(i: int) -> str:
    """8-letter TUH subject id: aaaaaaab, aaaaaaac, ..."""
    return "aaaaaa" + "abcdefghijklmnopqrstuvwxyz"[i // 26] + "abcdefghijklmnopqrstuvwxyz"[i % 26 + 0]


TUAB_PATTERNS = {0: Pattern("sine", 10.0, 30.0, "posterior", off=0.3),  # normal: alpha
                 1: Pattern("sine", 2.5, 45.0, "all")}  # abnormal: diffuse delta


def synth_tuab(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    plan = [  # (official folder, label folder, subject index, seconds): 5 + 5 train subjects, 2 + 2 eval
        *(("train", "abnormal", i, 80 + 2 * i) for i in range(1, 6)),
        *(("train", "normal", i, 90 - 2 * i) for i in range(11, 16)),
        ("eval", "abnormal", 7, 60), ("eval", "abnormal", 8, 50), ("eval", "normal", 17, 52), ("eval", "normal", 18, 60),
    ]
    for k, (official, label, si, secs) in enumerate(plan):
        sub = _subj(si)
        lab = int(label == "abnormal")
        p = root / "edf" / official / label / "01_tcp_ar" / f"{sub}_s001_t000.edf"
        write_class_edf(p, TUH_LABELS, SFREQ, secs, seed * 100 + k, [(0.0, secs, TUAB_PATTERNS[lab])])
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=secs,
                          official=official, label=lab))
    if bad:
        p = root / "edf" / "train" / "abnormall" / "01_tcp_ar" / f"{_subj(9)}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS, SFREQ, 20, seed * 100 + 50)
        bad_cases.append(dict(path=rel(root, p), case="renamed label folder", stage="discover"))
        p = root / "edf" / "train" / "normal" / "01_tcp_ar" / f"{_subj(10)}_s001_t000.edf"
        write_edf_file(p, TUH_LABELS[:-4] + TUH_LABELS[-2:], SFREQ, 20, seed * 100 + 51)  # no T1/T2
        bad_cases.append(dict(path=rel(root, p), case="missing channels T1, T2", stage="ingest"))
    return dict(files=files, bad=bad_cases)


#: What the event second of each TUEV class (label 1-6) carries.
TUEV_PATTERNS = {
    1: Pattern("spike", 3.0, 150.0, "all"),  # spsw: 3-Hz spike-and-slow-wave
    2: Pattern("sine", 2.0, 120.0, "all"),  # gped: generalized periodic waves
    3: Pattern("spike", 1.0, 150.0, "left", off=0.05),  # pled: one sharp discharge per second, one hemisphere
    4: Pattern("halfwave", 1.0, 150.0, "frontal", off=0.05),  # eyem: frontal slow deflection
    5: Pattern("noise", 25.0, 120.0, "all", width=10.0),  # artf: muscle
    6: None,  # bckg
}
EVENT_SPACING = 6.0  # s between event onsets: no 5-s window holds another event's second


def tuev_events(seconds: int, first_label: int, conflicts: bool) -> list[tuple[int, float, float, int]]:
    """Events (channel, start_s, end_s, label 1-6) of a recording: one 1-s event every 6 s.

    The first event (0.5 s) and the last (ending at the end) have the same label; their windows
    wrap around the recording's borders into each other. Labels cycle through the six classes.
    With ``conflicts``: the second event is marked spsw on one channel and bckg on another (-> spsw)
    and the third eyem on one channel and artf on two (-> artf), the disagreements real files hold.
    """
    starts = [0.5 + EVENT_SPACING * k for k in range(int((seconds - 4.5) // EVENT_SPACING) + 1)]
    out = [(0, 0.5, 1.5, first_label), (1, 0.5, 1.5, first_label)]
    for k, t in enumerate(starts[1:], 1):
        if conflicts and k == 1:
            out += [(5, t, t + 1, 1), (6, t, t + 1, 6)]
        elif conflicts and k == 2:
            out += [(3, t, t + 1, 4), (4, t, t + 1, 5), (7, t, t + 1, 5)]
        else:
            lab = 1 + (first_label + k) % 6
            out += [(c, t, t + 1, lab) for c in range(k % 3 + 1)]
    out.append((2, seconds - 1.0, float(seconds), first_label))
    return out


def tuev_label_of(events, t: float) -> int:
    """The class an event at ``t`` s shows (the adapter's dedup rule: bckg yields to any other label)."""
    labs = [lab for _, a, _, lab in events if a == t]
    other = [x for x in labs if x != 6]
    return max(set(other or labs), key=(other or labs).count)


def tuev_segments(events) -> list:
    """The event's pattern over [t - 1.5, t + 2.5) s: 4 of its window's 5 s (windows are event ± 2 s)."""
    return [(t - 1.5, t + 2.5, TUEV_PATTERNS[tuev_label_of(events, t)]) for t in sorted({a for _, a, _, _ in events})]


def rec_text(events) -> str:
    return "".join(f"{c},{a:.4f},{b:.4f},{lab}\n" for c, a, b, lab in events)


def synth_tuev(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    train = [(_subj(i), 120) for i in (1, 2, 3, 4, 5, 6)]  # 6 subjects: 1 drawn for val (20 %)
    for k, (sub, secs) in enumerate(train):
        p = root / "edf" / "train" / sub / f"{sub}_00000001.edf"
        events = tuev_events(secs, 1 + k % 6, conflicts=True)
        write_class_edf(p, TUH_LABELS, SFREQ, secs, seed * 100 + k, tuev_segments(events))
        write_text(p.with_suffix(".rec"), rec_text(events))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=secs, official="train",
                          events=events))
    p = root / "edf" / "eval" / "032" / "spsw_032_a_.edf"
    events = tuev_events(120, 6, conflicts=False)
    write_class_edf(p, TUH_LABELS, SFREQ, 120, seed * 100 + 9, tuev_segments(events))
    write_text(p.with_suffix(".rec"), rec_text(events))
    files.append(dict(path=rel(root, p), subject_key="tuh:tuev_eval_032", seconds=120, official="eval",
                      events=events))
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


TUSL_PATTERNS = {"bckg": Pattern("sine", 10.0, 25.0, "posterior", off=0.3),
                 "seiz": Pattern("spike", 4.0, 80.0, "all"),
                 "slow": Pattern("sine", 1.5, 60.0, "all")}
TUSL_EVENTS_PER_FILE = 12


def tusl_events(rng: np.random.Generator) -> list[tuple[float, float, str]]:
    """Back-to-back 10-s events, each class 4 times in a shuffled order, then a 7.5-s one (skipped: not 10 s)."""
    labels = [lab for lab in ("bckg", "seiz", "slow") for _ in range(TUSL_EVENTS_PER_FILE // 3)]
    rng.shuffle(labels)
    events = [(10.0 * k, 10.0 * (k + 1), lab) for k, lab in enumerate(labels)]
    end = 10.0 * len(labels)
    return events + [(end, end + 7.5, "bckg")]


def synth_tusl(root: Path, seed: int, bad: bool) -> dict:
    files, bad_cases = [], []
    rng = np.random.default_rng(seed)
    secs = 10 * TUSL_EVENTS_PER_FILE + 8
    for k in range(10):  # the paper protocol: 6 train, 2 test, 2 val files
        sub = _subj(k + 1)
        events = tusl_events(rng)
        p = root / "edf" / sub / "s001_2010_01_01" / "01_tcp_ar" / f"{sub}_s001_t000.edf"
        write_class_edf(p, TUH_LABELS, SFREQ, secs, seed * 100 + k, [(a, b, TUSL_PATTERNS[lab]) for a, b, lab in events])
        write_text(p.with_suffix(".tse_agg"), tse_text(events))
        files.append(dict(path=rel(root, p), subject_key=f"tuh:{sub}", seconds=secs, events=events))
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
