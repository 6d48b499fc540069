"""Train/val/test assignment of label rows: the paper's protocol (default) and seeded subject-wise.

Paper (default) is the evaluation protocol of NeuroLM's ``dataset_maker/*``,
so results compare with the published numbers: HMC 100/25/rest on the sorted
file list, Workload [:52]/[52:62]/[62:], SEED trials 0-8/9-11/12-14 in every
session, TUEV `np.random.seed(4523)` choice of 20 % of the train subjects, and
seeded versions of the two unseeded rules (TUAB's per-class 80/20 shuffle,
TUSL's ``os.walk``-ordered 60/20/20 file cut): the sorted list is shuffled with
``RandomState(seed)``. See each adapter's ``paper_notes``.

Seeded (``--split seeded``), subject-wise and *stable*: a subject's side is
`neurolm.ingest.splits.assign_split(seed, dataset, subject, fractions)`, the
hash rule every ingested recording gets (so a recording has the same split in
the RECORDINGS and the LABELS table, apart from ``heldout``). Why a hash and
not a shuffle: ingestion is incremental — when new files arrive the labels
table is rebuilt, and a shuffle of the grown subject list would move old
subjects between train and test (leakage between two versions of the same
experiment, and a held-out registry that no longer matches). With a hash,
adding subjects never moves existing ones. Where the archive has an official
evaluation folder (TUAB, TUEV), that folder is the test set and the hash only
splits the train folder's subjects into train/val. SEED's paper split is by
clip within a session, so it is not subject-independent; seeded is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurolm.errors import ConfigError
from neurolm.ingest.splits import assign_split


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    return fr  # type: ignore[return-value]


def seeded_split(rows: list[dict], seed: int, fractions: Sequence[float]) -> list[str]:
    """Subject-wise hash split (rows carry ``dataset`` and ``subject_id``); official eval rows are test.

    With an official test set, the train folder's subjects are split train/val
    in the ratio train:val of `fractions`.
    """
    fr = check_fractions(fractions)
    has_official = any(r.get("official") for r in rows)
    if has_official:
        total = fr[0] + fr[1]
        fr = (fr[0] / total, fr[1] / total, 0.0) if total > 0 else (1.0, 0.0, 0.0)
    out = []
    for r in rows:
        if has_official and r.get("official") == "eval":
            out.append("test")
        else:
            out.append(assign_split(seed, r["dataset"], r["subject_id"], fr))
    return out


def ordered_cut(keys: Sequence[str], cuts: Sequence[tuple[str, int | None]]) -> dict[str, str]:
    """Assign sorted unique `keys` to consecutive slices: cuts = [("train", 100), ("val", 125), ("test", None)]."""
    uniq = sorted(set(keys))
    out: dict[str, str] = {}
    lo = 0
    for name, hi in cuts:
        stop = len(uniq) if hi is None else min(hi, len(uniq))
        for k in uniq[lo:stop]:
            out[k] = name
        lo = max(lo, stop)
    return out


def shuffled_fraction_cut(keys: Sequence[str], parts: Sequence[tuple[str, float]], seed: int) -> dict[str, str]:
    """Consecutive slices of the sorted unique `keys` shuffled by ``RandomState(seed).shuffle``.

    parts = [("train", .6), ("test", .2), ("val", .2)], boundaries ``int(n * cumulative fraction)``.
    Why: the reference cuts a list in an arbitrary (``os.walk``) order; a seeded
    shuffle of the sorted list keeps "arbitrary but fixed" reproducible.
    """
    order = sorted(set(keys))
    np.random.RandomState(seed).shuffle(order)
    n = len(order)
    out: dict[str, str] = {}
    lo, acc = 0, 0.0
    for i, (name, f) in enumerate(parts):
        acc += f
        hi = n if i == len(parts) - 1 else int(n * acc + 1e-9)
        out.update({k: name for k in order[lo:hi]})
        lo = max(lo, hi)
    return out


def legacy_choice(subjects: Sequence[str], frac: float, seed: int) -> set[str]:
    """``np.random.seed(seed); np.random.choice(subjects, int(n*frac), replace=False)``.

    The legacy global-state generator is exactly what the reference calls
    (RandomState(seed) draws the same stream), so given the same *ordered*
    subject list the chosen subjects are identical.
    """
    subs = list(subjects)
    if not subs:
        return set()
    rs = np.random.RandomState(seed)
    chosen = rs.choice(np.array(subs, dtype=object), size=int(len(subs) * frac), replace=False)
    return {str(c) for c in chosen}


def legacy_shuffle_cut(subjects: Sequence[str], frac: float, seed: int) -> tuple[list[str], list[str]]:
    """``np.random.shuffle`` with a seeded RandomState, then the first int(n*frac) vs the rest."""
    subs = list(subjects)
    rs = np.random.RandomState(seed)
    rs.shuffle(subs)
    cut = int(len(subs) * frac)
    return subs[:cut], subs[cut:]
