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
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, drop_overlaps, n_samples_of, sample_at, sorted_files
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
        base = check_root(root)
        items: list[SourceItem] = []
        problems: list[Problem] = []
        for p in sorted_files(base, ("*.edf", "*.EDF")):
            if p.stem.lower().endswith("_sleepscoring"):
                continue  # the EDF+ copy of the scoring, not a recording
            if not _RECORDING.match(p.stem):
                problems.append((str(p), "not an HMC recording name SNxxx.edf"))
                continue
            scoring = p.with_name(f"{p.stem}_sleepscoring.txt")
            if not scoring.is_file():
                problems.append((str(p), f"no scoring file {scoring.name}"))
                continue
            try:
                parse_scoring(scoring)
            except BadInputError as exc:
                problems.append((str(p), f"{scoring.name}: {exc.reason}"))
                continue
            subject = p.stem.upper()
            items.append(self.item(base, p, subject=subject, subject_key=f"hmc:{subject}",
                                   extra={"label_file": str(scoring)}))
        return items, problems

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        skipped = skipped if skipped is not None else []
        n = n_samples_of(recording_meta)
        try:
            scoring = parse_scoring(dict(item.extra)["label_file"])
        except BadInputError as exc:
            skipped.append((item.path, exc.reason))
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
                skipped.append((item.path, f"epoch at {onset:g} s: past the end of the recording ({n / 200:g} s)"))
            else:
                good.append((s, s + EPOCH, STAGES[stage]))
        kept, msgs = drop_overlaps(good)
        skipped += [(item.path, m) for m in msgs]
        rows = [self.row(item, s, EPOCH, lab) for s, _, lab in kept]
        if past and past == epochs:
            skipped.append((item.path, f"scoring does not match the recording: all {past} epochs are past its end"))
        return rows

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        side = ordered_cut(list(universe or ()) + [r["source"] for r in rows], [("train", 100), ("val", 125), ("test", None)])
        return [side[r["source"]] for r in rows]
