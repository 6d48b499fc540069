"""TUEV v2.0.0 (TUH EEG Events): six event classes, 5-s windows around 1-s events.

Layout: ``edf/{train,eval}/<subject>/<file>.edf`` with a ``<file>.rec`` next to
each EDF: rows ``channel,start_s,end_s,label`` (label 1-6 = spsw, gped, pled,
eyem, artf, bckg; stored as label-1). The official ``eval`` folder is the test set.

Windows (reference rule): an event [t0, t1) covers samples s = first sample
with time >= t0 to e likewise; the window is [s - 2 s, e + 2 s) = 5 s for a
1-s event. The reference tiles the signal 3x so that windows at the borders
wrap around; that is circular indexing, so we store ``start = (s - 400) mod n``
and a row with ``wrap = True`` continues at the recording's first sample
(``start + length > n``). Events that are not 1 s long are skipped and reported
(the reference's fixed-size array assignment would fail on them).

Two modes (``mode=``):
- ``"dedup"`` (default): one window per unique event time. The reference emits
  one sample per ``.rec`` row, i.e. per *channel* of an event, so the same 5-s
  segment appears up to 22 times, sometimes with different labels (LaBraM#46),
  which inflates the counts and leaks duplicates into val/test. Conflicting
  labels at one time are resolved by: ignore ``bckg`` if any other label is
  present (an annotator marks background on the channels that do not show the
  event); then the label on most channels; ties go to the lower code
  (spsw > gped > pled > eyem > artf). Every resolved conflict is counted.
- ``"reference"``: one row per ``.rec`` row (with its ``channel``), for
  comparing with published TUEV numbers (112,491 samples).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.datasets.base import DatasetAdapter, Problem, check_root, n_samples_of, sample_ceil
from neurolm.datasets.common import (EDF_PATTERNS, collect, label_file_problem, past_end, read_labels,
                                     report_all_past, tuh_item)
from neurolm.datasets.splits import legacy_choice
from neurolm.errors import BadInputError, ConfigError
from neurolm.ingest.items import SourceItem
from neurolm.vocab import TUH_23

HALF = 2 * 200  # samples added on each side of an event
EVENT = 200  # expected event length (1 s)
BCKG = 5
MODES = ("dedup", "reference")


def parse_rec(path: str | os.PathLike) -> list[tuple[int, float, float, int]]:
    """Rows (channel, start_s, end_s, raw_label) of a .rec file; `BadInputError` if unparsable."""
    rows = []
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise BadInputError(f"cannot read label file: {exc.strerror or exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [x.strip() for x in line.split(",")]
        try:
            if len(parts) != 4:
                raise ValueError
            rows.append((int(float(parts[0])), float(parts[1]), float(parts[2]), int(float(parts[3]))))
        except ValueError:
            raise BadInputError(f"label file line {n} is not 'channel,start,end,label': {line.strip()[:60]!r}") from None
    if not rows:
        raise BadInputError("label file has no events")
    return rows


def resolve(labels: list[int]) -> tuple[int, bool]:
    """One label for an event annotated with `labels` (0-based) on several channels; (label, conflicted)."""
    distinct = set(labels)
    if len(distinct) == 1:
        return labels[0], False
    pool = [x for x in labels if x != BCKG] or labels
    counts = Counter(pool)
    best = max(counts.values())
    return min(k for k, v in counts.items() if v == best), True


class TUEV(DatasetAdapter):
    name = "tuev"
    task = "TUEV"
    label_names = ("spsw", "gped", "pled", "eyem", "artf", "bckg")
    answers = ("(A)", "(B)", "(C)", "(D)", "(E)", "(F)")
    question = ("Question: Which event type does this EEG segment belong to? Options: (A) spike and slow wave. "
                "(B) generalized periodic epileptiform discharge. (C) periodic lateralized epileptiform "
                "discharge. (D) eye movement. (E) artifact. (F) background. Answer: (")
    channels = TUH_23
    notch_hz = 50.0
    family = "tuh"
    seeded_fractions = (0.8, 0.2, 0.0)
    heldout_test = True
    paper_notes = (
        "The reference seeds np.random with 4523 and draws 20 % of the train subjects as val with "
        "np.random.choice from list(set(subjects)); a set's order depends on PYTHONHASHSEED, so only "
        "the seed is reproducible. Paper mode applies the same call, RandomState(4523).choice, to the "
        "SORTED subject list (the --seed option is ignored in paper mode); eval folder = test."
    )

    def __init__(self, mode: str = "dedup"):
        if mode not in MODES:
            raise ConfigError(f"unknown TUEV mode {mode!r}; use 'dedup' or 'reference'")
        self.mode = mode
        self.conflicts = 0  # events whose channels disagree (dedup mode), summed over windows() calls

    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        return collect(check_root(root), EDF_PATTERNS, self._classify)

    def _classify(self, base: Path, p: Path) -> SourceItem | str:
        """The item of one EDF, or why it is not a TUEV recording (folder, label file, name)."""
        dirs = [d.lower() for d in p.relative_to(base).parts[:-1]]
        official = next((d for d in dirs if d in ("train", "eval")), None)
        if official is None:
            return "not under a train/ or eval/ folder: folder missing or renamed"
        rec = p.with_suffix(".rec")
        why = label_file_problem(rec, parse_rec, f"no label file {rec.name} next to the recording")
        if why is not None:
            return why
        return tuh_item(self, base, p, {"official": official, "label_file": str(rec)},
                        bad_name="file name is not a TUEV <id>_<NNNNNNNN> name")

    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        skipped = skipped if skipped is not None else []
        n = n_samples_of(recording_meta)
        events = read_labels(item, "label_file", parse_rec, skipped)
        if events is None:
            return []
        if n < EVENT + 2 * HALF:
            skipped.append((item.path, f"recording shorter than 5 s ({n / 200:.1f} s)"))
            return []
        by_time: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        past = 0
        for chan, t0, t1, raw in events:
            s, e = sample_ceil(t0), sample_ceil(t1)
            where = f"event {t0:g}-{t1:g} s"
            if not 1 <= raw <= 6:
                skipped.append((item.path, f"{where}: unknown label code {raw} (expected 1-6)"))
            elif e - s != EVENT:
                skipped.append((item.path, f"{where}: {(e - s) / 200:g} s long, expected 1 s"))
            elif s < 0 or e > n:
                past += 1
                skipped.append((item.path, past_end(where, n)))
            else:
                by_time[(s, e)].append((chan, raw - 1))
        report_all_past(item, past, len(events), skipped)
        rows = []
        for (s, e), chans in sorted(by_time.items()):
            start, length = (s - HALF) % n, e - s + 2 * HALF
            wrap = start + length > n
            if self.mode == "reference":
                rows += [self.row(item, start, length, lab, wrap=wrap, channel=ch)
                         for ch, lab in sorted(chans)]
            else:
                lab, conflicted = resolve([lab for _, lab in chans])
                self.conflicts += conflicted
                rows.append(self.row(item, start, length, lab, wrap=wrap, channel=-1,
                                     n_channels=len(chans), conflict=conflicted))
        return rows

    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        train_subs = sorted({r["subject"] for r in rows if r["official"] == "train"})
        val = legacy_choice(train_subs, 0.2, 4523)
        return ["test" if r["official"] == "eval" else ("val" if r["subject"] in val else "train") for r in rows]
