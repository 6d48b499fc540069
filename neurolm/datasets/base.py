"""The contract every downstream-dataset adapter fulfils, and what they share.

Why adapters and not six scripts: NeuroLM ships one hard-coded
`dataset_maker/prepare_*.py` per dataset, each with its own reader loop, error
log, split and pickle layout. Here a dataset is only *knowledge*: where its
files are (`discover`), which channels/notch it uses, how a recording is cut
into labelled windows (`windows`) and how windows are split (`split`). The
signal work — read, select channels, filter, resample, write, commit,
quarantine — is done by the one ingestion worker on the `SourceItem`s an
adapter produces, so every dataset gets the same resumability and error
handling for free.

Label rows are plain dicts (they go straight into a DataFrame and the LABELS
table): ``task, recording_id, subject, start, length, label, label_name`` (with
``subject`` = the subject key, e.g. ``tuh:aaaaaaab``, unique across datasets) plus
the columns the split rules need (``source``: path relative to the root,
``official``: the archive's own train/eval folder, ``trial``: SEED clip index).
``start``/``length`` are samples at 200 Hz of the stored recording.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurolm.errors import ConfigError
from neurolm.ingest.items import SourceItem
from neurolm.datasets import splits
from neurolm.ingest.discover import recording_id_for

SFREQ = 200  # store rate: every start/length below is in samples at this rate
SplitMode = str  # "paper" (default: the reference's protocol) | "seeded" (subject-wise hash)
Problem = tuple[str, str]  # (path, one-line reason)

#: Published sample counts (NEUROLM_REFERENCE §1.4), by dataset and split.
#: "total" is given where the paper only reports a total. TUEV's figure counts
#: one sample per .rec row (our ``--tuev-mode reference``).
REFERENCE_COUNTS: dict[str, dict[str, int]] = {
    "tuab": {"train": 297_103, "val": 75_407, "test": 36_945, "total": 409_455},
    "tuev": {"total": 112_491},
    "seed": {"total": 38_475},
    "hmc": {"train": 91_248, "val": 22_124, "test": 23_871, "total": 137_243},
    "workload": {"total": 2_088},
    "tusl": {"total": 245},
}


def sample_at(seconds: float) -> int:
    """Sample index (200 Hz) of a time in seconds, robust to float noise (0.7*200 = 139.99…)."""
    return int(math.floor(float(seconds) * SFREQ + 1e-6))


def sample_ceil(seconds: float) -> int:
    """First sample whose time is >= `seconds` (NeuroLM's ``np.where(times >= t)[0][0]``)."""
    return int(math.ceil(float(seconds) * SFREQ - 1e-6))


def n_samples_of(meta: Mapping[str, Any]) -> int:
    """Length of a stored recording in 200-Hz samples, from `SignalStore.recording_meta`."""
    n = int(meta["n_samples"])
    sfreq = float(meta.get("sfreq", SFREQ))
    if abs(sfreq - SFREQ) > 1e-6:  # a store at another rate: convert to the 200-Hz grid
        n = int(n * SFREQ / sfreq)
    return n


def make_recording_id(dataset: str, root: str | os.PathLike, path: str | os.PathLike) -> str:
    """Stable, Zarr-safe id from the dataset and the path relative to the root.

    The same rule as generic discovery (`neurolm.ingest.discover.recording_id_for`),
    namespaced by dataset so TUAB's and TUEG's copy of one TUH file are two
    recordings (they are filtered differently: 50 vs 60 Hz notch).
    """

    return recording_id_for(dataset, relpath(root, path))


def relpath(root: str | os.PathLike, path: str | os.PathLike) -> str:
    return Path(os.path.relpath(os.fspath(path), os.fspath(root))).as_posix()


def extra_of(item: SourceItem) -> dict[str, str]:
    return dict(item.extra)


class DatasetAdapter(ABC):
    """Knowledge about one downstream dataset (see module docstring).

    Subclasses set the class attributes and implement `discover`, `windows`
    and `paper_split`. `split` (paper/seeded dispatch) and `protocol` are shared.
    """

    name: str = ""  # registry key and recording-id namespace
    task: str = ""  # LABELS.task (upper-case, NeuroLM's dataset name)
    label_names: tuple[str, ...] = ()  # index = label code
    answers: tuple[str, ...] = ()  # NeuroLM's answer text per label (§4.3)
    question: str = ""  # NeuroLM's prompt (§4.3)
    channels: tuple[str, ...] = ()  # vocabulary names, in the stored order
    notch_hz: float | None = 50.0
    family: str = ""  # subject-key family ("tuh" shares subjects with TUEG)
    #: seeded-mode fractions (train, val, test) for subjects without an official split
    seeded_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    #: register test subjects as held out from pretraining (TUH corpora, NeuroLM#5)
    heldout_test: bool = False
    #: the paper's split rules that cannot be reproduced, with what we do instead
    paper_notes: str = ""

    # ------------------------------------------------------------------ contract
    @abstractmethod
    def discover(self, root: str | os.PathLike) -> tuple[list[SourceItem], list[Problem]]:
        """All recordings under `root` (sorted), and per-file problems found without reading signals."""

    @abstractmethod
    def windows(self, item: SourceItem, recording_meta: Mapping[str, Any],
                skipped: list[Problem] | None = None) -> list[dict]:
        """Label rows of one ingested recording; events that cannot be cut go to `skipped`."""

    @abstractmethod
    def paper_split(self, rows: list[dict], seed: int, universe: Sequence[str] | None = None) -> list[str]:
        """Split per row following the reference's rule (see `paper_notes`).

        `universe`: relative paths of every discovered recording, for rules that
        cut a sorted file list (a file without windows still takes its place).
        """

    # ------------------------------------------------------------------ shared
    def split(self, rows: list[dict], mode: SplitMode = "paper", seed: int = 0,
              universe: Sequence[str] | None = None) -> list[dict]:
        """Return copies of `rows` with a ``split`` column (train/val/test).

        ``paper`` (default) is the evaluation protocol of the reference, so our
        numbers compare with the published ones; ``seeded`` is the stable
        subject-wise hash split (see `neurolm.datasets.splits`).
        """

        if mode == "seeded":
            assigned = splits.seeded_split(rows, seed, self.seeded_fractions)
        elif mode == "paper":
            assigned = self.paper_split(rows, seed, universe)
        else:
            raise ConfigError(f"unknown split mode {mode!r}; use 'paper' or 'seeded'")
        return [{**r, "split": s} for r, s in zip(rows, assigned)]

    def protocol(self, mode: SplitMode, seed: int = 0) -> str:
        """One line naming the split protocol `mode` means for this dataset (reports print it)."""
        if mode == "paper":
            return f"paper (NeuroLM's evaluation protocol): {self.paper_notes}"
        if mode == "seeded":
            tr, va, te = self.seeded_fractions
            test = "the official eval folder is test; " if self.seeded_fractions[2] == 0 else ""
            return (f"seeded (subject-wise, not the paper's): {test}subjects hashed with seed {seed} into "
                    f"train/val/test {tr:g}/{va:g}/{te:g}; adding subjects never moves existing ones")
        raise ConfigError(f"unknown split mode {mode!r}; use 'paper' or 'seeded'")

    def item(self, root: str | os.PathLike, path: str | os.PathLike, *, subject: str,
             subject_key: str, session: str = "", extra: Mapping[str, str] | None = None) -> SourceItem:
        """A `SourceItem` carrying this dataset's channel order and notch."""
        ex = {"task": self.task, "source": relpath(root, path), **(extra or {})}
        return SourceItem(
            path=os.fspath(path),
            recording_id=make_recording_id(self.name, root, path),
            dataset=self.name,
            subject=subject,
            session=session,
            subject_key=subject_key,
            notch_hz=self.notch_hz,
            channels=self.channels,
            crop_end_s=0.0,
            extra=tuple(sorted((str(k), str(v)) for k, v in ex.items())),
            root=os.fspath(root),
        )

    def row(self, item: SourceItem, start: int, length: int, label: int, **more: Any) -> dict:
        ex = extra_of(item)
        out = {
            "task": self.task,
            "recording_id": item.recording_id,
            "subject": item.subject_key or item.subject,
            "dataset": item.dataset,  # with subject_id: the seeded split's hash input (not written)
            "subject_id": item.subject,
            "start": int(start),
            "length": int(length),
            "label": int(label),
            "label_name": self.label_names[label],
            "source": ex.get("source", ""),
            "official": ex.get("official", ""),
            "trial": -1,
        }
        out.update(more)
        return out

    def rows_without_overlaps(self, item: SourceItem, events: Sequence[tuple[int, int, int]], length: int,
                              skipped: list[Problem]) -> list[dict]:
        """Rows of fixed-length events (start, end, label) after `drop_overlaps`; drops go to `skipped`."""
        kept, msgs = drop_overlaps(events)
        skipped += [(item.path, m) for m in msgs]
        return [self.row(item, s, length, lab) for s, _, lab in kept]


def check_root(root: str | os.PathLike) -> Path:
    """The dataset root as a Path; `ConfigError` when it does not exist (a user error)."""
    p = Path(os.fspath(root))
    if not p.is_dir():
        raise ConfigError(f"dataset root {p} is not a directory")
    return p


def sorted_files(root: Path, patterns: Sequence[str]) -> list[Path]:
    """Files matching any glob pattern (recursive), sorted by relative path, no duplicates."""
    seen: dict[str, Path] = {}
    for pat in patterns:
        for p in root.rglob(pat):
            if p.is_file():
                seen[p.relative_to(root).as_posix()] = p
    return [seen[k] for k in sorted(seen)]


def drop_overlaps(events: Sequence[tuple[int, int, int]]) -> tuple[list[tuple[int, int, int]], list[str]]:
    """Events (start, end, label) in samples without overlapping contradictions.

    Why: a window that overlaps another window with a *different* label is
    labelled both ways, so both are dropped and reported. An exact duplicate
    (same span, same label) is kept once. Overlaps with the same label but
    different spans are kept (they agree). Returns (kept, one message per drop).
    """
    order = sorted(range(len(events)), key=lambda i: (events[i][0], events[i][1]))
    bad: set[int] = set()
    dup: set[int] = set()
    msgs: list[str] = []
    for a_pos, a in enumerate(order):
        s1, e1, l1 = events[a]
        for b in order[a_pos + 1:]:
            s2, e2, l2 = events[b]
            if s2 >= e1:
                break
            if (s1, e1, l1) == (s2, e2, l2):
                dup.add(b)
            elif l1 != l2:
                bad.update((a, b))
    for i in sorted(bad):
        s, e, lab = events[i]
        msgs.append(f"event {s / SFREQ:g}-{e / SFREQ:g} s overlaps an event with another label: skipped")
    for i in sorted(dup - bad):
        s, e, _ = events[i]
        msgs.append(f"event {s / SFREQ:g}-{e / SFREQ:g} s is a duplicate: kept once")
    kept = [events[i] for i in range(len(events)) if i not in bad and i not in dup]
    return kept, msgs
