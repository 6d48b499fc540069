"""TUAB v3.0.0 (TUH Abnormal EEG): normal/abnormal, 10-s windows.

Layout: ``edf/{train,eval}/{abnormal,normal}/01_tcp_ar/<id>_sNNN_tNNN.edf``.
The label is the folder; the official ``eval`` folder is the test set.
Reference rules kept: the 23 TUH channels in NeuroLM's order (a file missing
one is quarantined, like the reference's ``tuab-process-error-files.txt``),
a 50-Hz notch (inherited from LaBraM/BIOT even though TUH is US data),
non-overlapping 10-s windows from the first sample, remainder dropped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, n_samples_of
from neurolm.datasets.common import EDF_PATTERNS, collect, tuh_item
from neurolm.datasets.splits import legacy_shuffle_cut
from neurolm.ingest.items import SourceItem
from neurolm.vocab import TUH_23

WINDOW = 10 * 200
_LABELS = {"normal": 0, "abnormal": 1}


class TUAB(DatasetAdapter):
    name = "tuab"
    task = "TUAB"
    label_names = ("normal", "abnormal")
    answers = ("No", "Yes")
    question = "Question: Is this EEG segment abnormal? Answer:"
    channels = TUH_23
    notch_hz = 50.0
    family = "tuh"
    seeded_fractions = (0.8, 0.2, 0.0)  # test = official eval folder
    heldout_test = True
    paper_notes = (
        "The reference shuffles the train folder's subjects per class with an UNSEEDED "
        "np.random.shuffle (80/20 train/val), so its split cannot be reproduced. Paper mode "
        "sorts each class's subjects, shuffles them with RandomState(seed) and keeps the "
        "reference's per-class 80/20 cut; the eval folder is the test set."
    )

    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        base = check_root(root)
        items, problems = collect(base, EDF_PATTERNS, self._classify)
        for split in ("train", "eval"):
            if not any(dict(i.extra).get("official") == split for i in items):
                problems.append((str(base / split), f"no recordings in an official '{split}' folder"))
        return items, problems

    def _classify(self, base: Path, p: Path) -> SourceItem | str:
        """The item of one EDF, or why it is not a TUAB recording (folder, montage, name)."""
        dirs = [d.lower() for d in p.relative_to(base).parts[:-1]]
        official = next((d for d in dirs if d in ("train", "eval")), None)
        label_dir = next((d for d in dirs if d in _LABELS), None)
        if official is None or label_dir is None:
            return ("not under {train,eval}/{abnormal,normal}/: folder missing or renamed "
                    f"({'/'.join(dirs) or 'root'})")
        montage = next((d for d in dirs if d.startswith("0") and "_tcp_" in d), "01_tcp_ar")
        if montage != "01_tcp_ar":
            return f"montage {montage}: NeuroLM's TUAB uses 01_tcp_ar only"
        return tuh_item(self, base, p, {"official": official, "label": str(_LABELS[label_dir])})

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        n = n_samples_of(recording_meta)
        label = int(dict(item.extra)["label"])
        if n < WINDOW and skipped is not None:
            skipped.append((item.path, f"recording shorter than 10 s ({n / 200:.1f} s): no window"))
        return [self.row(item, i * WINDOW, WINDOW, label) for i in range(n // WINDOW)]

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        side: dict[tuple[int, str], str] = {}
        for label in sorted({r["label"] for r in rows if r["official"] == "train"}):
            subs = sorted({r["subject"] for r in rows if r["official"] == "train" and r["label"] == label})
            train, val = legacy_shuffle_cut(subs, 0.8, seed)
            side.update({(label, s): "train" for s in train})
            side.update({(label, s): "val" for s in val})
        return ["test" if r["official"] == "eval" else side[(r["label"], r["subject"])] for r in rows]
