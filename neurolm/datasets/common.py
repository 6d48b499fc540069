"""Discovery and label-checking steps that several dataset adapters share.

Why a module: TUAB, TUEV, TUSL, HMC, Workload and SEED each walk the files
under a root, check a label file next to every recording, name TUH subjects
from file names and check labelled events against the recording's length.
Doing that once here keeps the problem/skip reason texts identical across
datasets (users grep quarantine reports for them) and leaves each adapter with
only its own rules: folder layout, label vocabulary, event length.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from neurolm.datasets.base import SFREQ, Problem, sorted_files
from neurolm.errors import BadInputError
from neurolm.ingest.items import SourceItem
from neurolm.ingest.layouts import infer_metadata

if TYPE_CHECKING:
    from neurolm.datasets.base import DatasetAdapter

EDF_PATTERNS = ("*.edf", "*.EDF")
T = TypeVar("T")

#: What an adapter says about one discovered file: its item, a one-line problem
#: reason, or None for a file that is not a recording (e.g. HMC's scoring EDF).
Classified = SourceItem | str | None


def collect(base: Path, patterns: tuple[str, ...],
            classify: Callable[[Path, Path], Classified]) -> tuple[list[SourceItem], list[Problem]]:
    """Items and problems of the files under `base` matching `patterns`, in sorted order.

    Why: every adapter's discovery is the same loop (one verdict per file,
    problems keyed by the file's path); only `classify(base, path)` differs.
    """
    items: list[SourceItem] = []
    problems: list[Problem] = []
    for p in sorted_files(base, patterns):
        verdict = classify(base, p)
        if isinstance(verdict, str):
            problems.append((str(p), verdict))
        elif verdict is not None:
            items.append(verdict)
    return items, problems


def tuh_subject(root: str | os.PathLike, path: Path, dataset: str) -> tuple[str, str, str, dict] | None:
    """(subject, session, subject_key, extra) of a TUH file name, or None when it is not one."""
    meta = infer_metadata(root, path, layout="tuh", dataset=dataset)
    if meta["layout"] != "tuh":
        return None
    return meta["subject"], meta["session"], meta["subject_key"], meta["extra"]


def tuh_item(adapter: DatasetAdapter, base: Path, path: Path, extra: Mapping[str, str],
             bad_name: str = "file name is not a TUH <id>_sNNN_tNNN name") -> SourceItem | str:
    """The item of a TUH-named recording (subject, session and key from its name), else `bad_name`.

    Why shared: TUH corpora (TUAB, TUEV, TUSL) key subjects the same way as
    TUEG, so held-out test subjects can be excluded from pretraining.
    """
    ids = tuh_subject(base, path, adapter.name)
    if ids is None:
        return bad_name
    subject, session, key, _ = ids
    return adapter.item(base, path, subject=subject, subject_key=key, session=session, extra=extra)


def label_file_problem(label: Path, parse: Callable[[Path], Any], missing: str) -> str | None:
    """Why the label file of a recording is unusable (`missing` when absent), or None when it parses.

    Why at discovery: a recording without usable labels is a problem to report
    before its signal is ingested, not a silent zero-window recording.
    """
    if not label.is_file():
        return missing
    try:
        parse(label)
    except BadInputError as exc:
        return f"{label.name}: {exc.reason}"
    return None


def read_labels(item: SourceItem, key: str, parse: Callable[[str], T], skipped: list[Problem]) -> T | None:
    """`parse(item.extra[key])`, or None with the reason added to `skipped` (the file changed since discovery)."""
    try:
        return parse(dict(item.extra)[key])
    except BadInputError as exc:
        skipped.append((item.path, exc.reason))
        return None


def past_end(where: str, n: int) -> str:
    """Skip reason of an event at `where` that ends after the recording's `n` samples."""
    return f"{where}: past the end of the recording ({n / SFREQ:g} s)"


def report_all_past(item: SourceItem, past: int, total: int, skipped: list[Problem],
                    source: str = "label file", unit: str = "events") -> None:
    """One extra skip line when every event is past the end: the label file belongs to another recording."""
    if past and past == total:
        skipped.append((item.path, f"{source} does not match the recording: all {past} {unit} are past its end"))
