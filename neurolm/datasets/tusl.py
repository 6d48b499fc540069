"""TUSL (TUH Slowing): background / seizure / slowing, 10-s event segments.

Layout: ``<subject>/.../<id>_sNNN_tNNN.edf`` with a ``.tse_agg`` next to each
EDF: two header lines (``version = tse_v1.0.0`` and a blank line), then rows
``start stop label [probability]`` in seconds. Reference rules kept: labels
bckg/seiz/slow = 0/1/2, only events exactly 10 s long (others are reported and
skipped), 60-Hz notch, the 23 TUH channels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, n_samples_of, sample_at
from neurolm.datasets.common import (EDF_PATTERNS, collect, label_file_problem, past_end, read_labels,
                                     report_all_past, tuh_item)
from neurolm.datasets.splits import shuffled_fraction_cut
from neurolm.errors import BadInputError
from neurolm.ingest.items import SourceItem
from neurolm.vocab import TUH_23

EVENT = 10 * 200
CODES = {"bckg": 0, "seiz": 1, "slow": 2}


def parse_tse(path: str | os.PathLike) -> list[tuple[float, float, str]]:
    """Events (start_s, stop_s, label) of a .tse_agg file; `BadInputError` if unparsable."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        raise BadInputError(f"cannot read label file: {exc.strerror or exc}") from None
    events = []
    for n, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        try:
            if len(parts) < 3:
                raise ValueError
            events.append((float(parts[0]), float(parts[1]), parts[2].lower()))
        except ValueError:
            raise BadInputError(f"label file line {n} is not 'start stop label': {line.strip()[:60]!r}") from None
    if not events:
        raise BadInputError("label file has no events")
    return events


class TUSL(DatasetAdapter):
    name = "tusl"
    task = "TUSL"
    label_names = ("background", "seizure", "slowing")
    answers = ("(A)", "(B)", "(C)")
    question = ("Question: Which type does this EEG segment belong to? Options: (A) background. "
                "(B) seizure. (C) slowing. Answer: (")
    channels = TUH_23
    notch_hz = 60.0
    family = "tuh"
    seeded_fractions = (0.6, 0.2, 0.2)
    heldout_test = True
    paper_notes = (
        "The reference splits FILES 60/20/20 into train/test/eval in os.walk order, which is "
        "unsorted (file-system dependent) and not reproducible. Paper mode makes the same file-level "
        "60 % train / 20 % test / 20 % val cut on the sorted list of recordings shuffled with "
        "RandomState(--seed)."
    )

    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        return collect(check_root(root), EDF_PATTERNS, self._classify)

    def _classify(self, base: Path, p: Path) -> SourceItem | str:
        """The item of one EDF, or why it is not a TUSL recording (label file, name)."""
        tse = p.with_suffix(".tse_agg")
        why = label_file_problem(tse, parse_tse, f"no label file {tse.name} next to the recording")
        if why is not None:
            return why
        return tuh_item(self, base, p, {"label_file": str(tse)})

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        skipped = skipped if skipped is not None else []
        n = n_samples_of(recording_meta)
        events = read_labels(item, "label_file", parse_tse, skipped)
        if events is None:
            return []
        good, past = [], 0
        for t0, t1, lab in events:
            s, e = sample_at(t0), sample_at(t1)
            where = f"event {t0:g}-{t1:g} s"
            if lab not in CODES:
                skipped.append((item.path, f"{where}: unknown label {lab!r} (expected bckg, seiz, slow)"))
            elif e - s != EVENT:
                skipped.append((item.path, f"{where}: {(e - s) / 200:g} s long, expected 10 s"))
            elif e > n:
                past += 1
                skipped.append((item.path, past_end(where, n)))
            else:
                good.append((s, e, CODES[lab]))
        rows = self.rows_without_overlaps(item, good, EVENT, skipped)
        report_all_past(item, past, len(events), skipped)
        return rows

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        side = shuffled_fraction_cut(list(universe or ()) + [r["source"] for r in rows],
                                     [("train", 0.6), ("test", 0.2), ("val", 0.2)], seed)
        return [side[r["source"]] for r in rows]
