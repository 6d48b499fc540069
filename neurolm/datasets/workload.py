"""Workload (PhysioNet EEGMAT, mental arithmetic): rest vs task, 4-s windows.

Layout: ``SubjectXX_1.edf`` (rest) and ``SubjectXX_2.edf`` (arithmetic task).
Reference rules kept: 19 channels (``EEG Fp1`` ... uppercased; A2-A1 and ECG
dropped) in the file's order, 50-Hz notch, the LAST 60 s of each file cut into
29 windows of 4 s with a 2-s stride; ``_1`` -> 0 "No", ``_2`` -> 1 "Yes".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, n_samples_of
from neurolm.datasets.common import EDF_PATTERNS, collect
from neurolm.datasets.splits import ordered_cut
from neurolm.ingest.items import SourceItem

WINDOW, STRIDE, TAIL = 4 * 200, 2 * 200, 60 * 200
N_WINDOWS = (TAIL - WINDOW) // STRIDE + 1  # 29
_FILE = re.compile(r"^Subject(?P<sub>\d+)_(?P<cond>[12])$")


class Workload(DatasetAdapter):
    name = "workload"
    task = "Workload"
    label_names = ("No", "Yes")
    answers = ("No", "Yes")
    question = "Question: Is this EEG segment of high workload? Answer:"
    channels = ("FP1", "FP2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4",
                "T5", "T6", "P3", "P4", "O1", "O2", "FZ", "CZ", "PZ")
    notch_hz = 50.0
    family = "workload"
    seeded_fractions = (0.72, 0.14, 0.14)  # ~ the paper's 26/5/5 subjects
    paper_notes = "Sorted files: [:52] train, [52:62] val, [62:] test (reproduced exactly; subject-wise for 36 subjects)."

    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        return collect(check_root(root), EDF_PATTERNS, self._classify)

    def _classify(self, base: Path, p: Path) -> SourceItem | str:
        """The item of one EDF (label from its _1/_2 suffix), or why it is not a Workload recording."""
        m = _FILE.match(p.stem)
        if m is None:
            return "not a Workload recording name SubjectXX_{1,2}.edf"
        subject = f"Subject{m['sub']}"
        return self.item(base, p, subject=subject, subject_key=f"workload:{subject}",
                         session=m["cond"], extra={"label": str(int(m["cond"]) - 1)})

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        n = n_samples_of(recording_meta)
        if n < TAIL:
            if skipped is not None:
                skipped.append((item.path, f"recording shorter than 60 s ({n / 200:g} s): no window"))
            return []
        label, first = int(dict(item.extra)["label"]), n - TAIL
        return [self.row(item, first + k * STRIDE, WINDOW, label) for k in range(N_WINDOWS)]

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        side = ordered_cut(list(universe or ()) + [r["source"] for r in rows], [("train", 52), ("val", 62), ("test", None)])
        return [side[r["source"]] for r in rows]
