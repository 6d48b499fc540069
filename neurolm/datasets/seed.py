"""SEED (SJTU Emotion EEG, "seed-3"): 15 film clips per session, 3 emotions, 4-s windows.

Layout: ``<subject>_<date>.cnt`` (Neuroscan, 1000 Hz, 62 EEG channels plus M1,
M2, VEO, HEO and ECG, which are dropped), 15 subjects x 3 sessions. Sessions
of a subject are numbered by sorted date.

Every session shows the same 15 clips at the same times, so clip boundaries
are hard-coded, as in NeuroLM's ``dataset_maker/prepare_SEED.py`` (seconds
from the recording start, NEUROLM_REFERENCE §1.4). ``<root>/seed_trials.json``
(``{"start_s": [...], "end_s": [...], "labels": [...]}``, labels in SEED's
1/0/-1 convention) overrides them for variants of the release and for small
test fixtures.

Windows: reference rule of NeuroLM's ``SEEDDataset``: a clip [start, end]
holds ``(end - start + 1) * 200`` samples (end inclusive), cut into 4-s
windows with a 4-s stride. With the reference timings that is 855 windows per
session, 38,475 for 45 sessions: the paper's count.

Reading: the reference reads the ``.cnt`` files with MNE's
``data_format='int32'``; our items carry ``cnt_format=int32`` so the reader
never lets MNE guess the sample width.

Labels: session order [1,0,-1,-1,0,1,-1,0,1,1,0,-1,0,1,-1], 1 = H -> 0
"Positive", 0 = N -> 1 "Neutral", -1 = S -> 2 "Negative".
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, n_samples_of, sorted_files
from neurolm.datasets.common import read_labels
from neurolm.errors import BadInputError
from neurolm.ingest.items import SourceItem

WINDOW = STRIDE = 4 * 200
#: NeuroLM's prepare_SEED.py clip boundaries (seconds, end inclusive)
START_S = (24, 289, 550, 782, 1049, 1260, 1483, 1747, 1993, 2283, 2550, 2812, 3072, 3332, 3598)
END_S = (264, 526, 757, 1023, 1235, 1458, 1722, 1967, 2259, 2525, 2788, 3046, 3308, 3573, 3806)
SESSION_LABELS = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)
LABEL_OF = {1: 0, 0: 1, -1: 2}  # SEED's 1/0/-1 -> H/N/S -> 0/1/2
TRIALS_FILE = "seed_trials.json"
CHANNELS_62 = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "CZ",
    "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8",
    "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ", "PO4",
    "PO6", "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)  # fmt: skip
_FILE = re.compile(r"^(?P<sub>[A-Za-z0-9]+)_(?P<date>[A-Za-z0-9]+)$")


def load_trials(root: str | os.PathLike) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(start_s, end_s, labels) of the 15 clips: the reference's timings or ``seed_trials.json``."""
    path = Path(os.fspath(root)) / TRIALS_FILE
    if not path.is_file():
        return START_S, END_S, SESSION_LABELS
    try:
        spec = json.loads(path.read_text())
        start, end, labels = (tuple(int(x) for x in spec[k]) for k in ("start_s", "end_s", "labels"))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"{TRIALS_FILE}: not {{start_s, end_s, labels}} lists of integers ({exc})") from None
    if not len(start) == len(end) == len(labels) or any(e < s for s, e in zip(start, end)):
        raise BadInputError(f"{TRIALS_FILE}: start_s/end_s/labels differ in length or end < start")
    if any(x not in LABEL_OF for x in labels):
        raise BadInputError(f"{TRIALS_FILE}: labels must be 1, 0 or -1")
    return start, end, labels


class SEED(DatasetAdapter):
    name = "seed"
    task = "SEED"
    label_names = ("Positive", "Neutral", "Negative")
    answers = ("Positive", "Neutral", "Negative")
    question = "Question: Which emotion type does this EEG segment belong to? Answer:"
    channels = CHANNELS_62
    notch_hz = 50.0
    family = "seed"
    seeded_fractions = (0.6, 0.2, 0.2)
    paper_notes = ("Split by clip within every session: clips 0-8 train, 9-11 val, 12-14 test (reproduced "
                   "exactly; not subject-independent, as in the reference).")

    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        """``*.cnt``; stand-ins in another container (EDF/FIF named ``.edf``/``.fif``) are accepted too."""
        base = check_root(root)
        problems: list[Problem] = []
        try:
            load_trials(base)
        except BadInputError as exc:
            return [], [(str(base / TRIALS_FILE), exc.reason)]
        by_subject: dict[str, list[tuple[str, Path]]] = defaultdict(list)
        for p in sorted_files(base, ("*.cnt", "*.CNT", "*.edf", "*.fif")):
            m = _FILE.match(p.stem)
            if m is None:
                problems.append((str(p), "not a SEED recording name <subject>_<date>"))
                continue
            by_subject[m["sub"]].append((m["date"], p))
        items = []
        for sub in sorted(by_subject):
            for k, (_, p) in enumerate(sorted(by_subject[sub])):
                items.append(self.item(base, p, subject=sub, subject_key=f"seed:{sub}", session=str(k + 1),
                                       extra={"trials_root": str(base), "cnt_format": "int32"}))
        items.sort(key=lambda i: i.recording_id)
        return items, problems

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        skipped = skipped if skipped is not None else []
        n = n_samples_of(recording_meta)
        trials = read_labels(item, "trials_root", load_trials, skipped)
        if trials is None:
            return []
        start, end, labels = trials
        rows = []
        for trial, (s, e, lab) in enumerate(zip(start, end, labels)):
            n_win = ((e - s + 1) * 200 - WINDOW) // STRIDE + 1
            kept = [s * 200 + j * STRIDE for j in range(max(n_win, 0))]
            ok = [w for w in kept if w + WINDOW <= n]
            if len(ok) < len(kept):
                skipped.append((item.path, f"clip {trial} ({s}-{e} s): {len(kept) - len(ok)} window(s) past the "
                                           f"end of the recording ({n / 200:g} s)"))
            rows += [self.row(item, w, WINDOW, LABEL_OF[lab], trial=trial, n_trials=len(start)) for w in ok]
        return rows

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        n_trials = max((r.get("n_trials", 15) for r in rows), default=15)
        lo, hi = int(n_trials * 0.6), int(n_trials * 0.8)  # 9, 12 for 15 clips (reference percentages)
        return ["train" if r["trial"] < lo else ("val" if r["trial"] < hi else "test") for r in rows]
