"""HMC v1.1 (Haaglanden Medisch Centrum sleep staging, PhysioNet): 30-s epochs, 5 stages.

Layout: ``SNxxx.edf`` and ``SNxxx_sleepscoring.txt`` (CSV: Date, Time,
Recording onset, Duration, Annotation, Linked channel) in one folder; the
release also holds ``SNxxx_sleepscoring.edf`` (the same scoring as EDF+), which
is not a recording and is ignored. Reference rules kept: the 4 EEG derivations
F4-M1, C4-M1, O2-M1, C3-M2 stored as F4, C4, O2, C3; only rows with
Duration = 30; W, N1, N2, N3, R = 0-4; 50-Hz notch. The reference assumes
exactly two non-30-s rows per file (lights off/on); we simply keep every
30-s stage row and report unknown stages and epochs past the recording's end.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, n_samples_of, sample_at
from neurolm.datasets.common import (EDF_PATTERNS, collect, label_file_problem, past_end, read_labels,
                                     report_all_past)
from neurolm.datasets.splits import ordered_cut
from neurolm.errors import BadInputError
from neurolm.ingest.items import SourceItem

EPOCH = 30 * 200
STAGES = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "R": 4}
_RECORDING = re.compile(r"^SN\d{3}$", re.IGNORECASE)
_COLUMNS = ("recording onset", "duration", "annotation")


def parse_scoring(path: str | os.PathLike) -> list[tuple[float, float, str]]:
    """(onset_s, duration_s, annotation) rows of a ``_sleepscoring.txt``; `BadInputError` if unparsable."""
    try:
        with open(path, newline="", errors="replace") as fh:
            reader = csv.reader(fh, skipinitialspace=True)
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in _COLUMNS if c not in header]
            if missing:
                raise BadInputError(f"scoring file lacks column(s) {', '.join(missing)}")
            i_on, i_dur, i_ann = (header.index(c) for c in _COLUMNS)
            rows = []
            for n, rec in enumerate(reader, 2):
                if not any(x.strip() for x in rec):
                    continue
                try:
                    rows.append((float(rec[i_on]), float(rec[i_dur]), rec[i_ann].strip()))
                except (ValueError, IndexError):
                    raise BadInputError(f"scoring line {n} is malformed: {','.join(rec)[:60]!r}") from None
    except OSError as exc:
        raise BadInputError(f"cannot read scoring file: {exc.strerror or exc}") from None
    if not rows:
        raise BadInputError("scoring file has no rows")
    return rows


def stage_of(annotation: str) -> str:
    """'Sleep stage N2' -> 'N2'."""
    return annotation.strip().split()[-1].upper() if annotation.strip() else ""


class HMC(DatasetAdapter):
    name = "hmc"
    task = "HMC"
    label_names = ("Wake", "NREM-1", "NREM-2", "NREM-3", "REM")
    answers = ("(A)", "(B)", "(C)", "(D)", "(E)")
    question = ("Question: Which sleep type does this EEG segment belong to? Options: (A) Wake. "
                "(B) NREM-1. (C) NREM-2. (D) NREM-3. (E) REM. Answer: (")
    channels = ("F4", "C4", "O2", "C3")
    notch_hz = 50.0
    family = "hmc"
    seeded_fractions = (0.66, 0.17, 0.17)  # ~ the paper's 100/25/26 of 151
    paper_notes = "Sorted recordings: first 100 train, next 25 val, rest test (reproduced exactly)."

    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        return collect(check_root(root), EDF_PATTERNS, self._classify)

    def _classify(self, base: Path, p: Path) -> SourceItem | str | None:
        """The item of one EDF, why it is not an HMC recording, or None for the scoring's EDF+ copy."""
        if p.stem.lower().endswith("_sleepscoring"):
            return None  # the EDF+ copy of the scoring, not a recording
        if not _RECORDING.match(p.stem):
            return "not an HMC recording name SNxxx.edf"
        scoring = p.with_name(f"{p.stem}_sleepscoring.txt")
        why = label_file_problem(scoring, parse_scoring, f"no scoring file {scoring.name}")
        if why is not None:
            return why
        subject = p.stem.upper()
        return self.item(base, p, subject=subject, subject_key=f"hmc:{subject}", extra={"label_file": str(scoring)})

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        skipped = skipped if skipped is not None else []
        n = n_samples_of(recording_meta)
        scoring = read_labels(item, "label_file", parse_scoring, skipped)
        if scoring is None:
            return []
        good, past, epochs = [], 0, 0
        for onset, dur, ann in scoring:
            if abs(dur - 30.0) > 1e-6:
                continue  # lights off/on and other markers: the reference keeps 30-s rows only
            epochs += 1
            stage, s = stage_of(ann), sample_at(onset)
            if stage not in STAGES:
                skipped.append((item.path, f"epoch at {onset:g} s: unknown sleep stage {ann!r}"))
            elif s + EPOCH > n:
                past += 1
                skipped.append((item.path, past_end(f"epoch at {onset:g} s", n)))
            else:
                good.append((s, s + EPOCH, STAGES[stage]))
        rows = self.rows_without_overlaps(item, good, EPOCH, skipped)
        report_all_past(item, past, epochs, skipped, source="scoring", unit="epochs")
        return rows

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        side = ordered_cut(list(universe or ()) + [r["source"] for r in rows], [("train", 100), ("val", 125), ("test", None)])
        return [side[r["source"]] for r in rows]
