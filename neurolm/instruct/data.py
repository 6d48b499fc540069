"""Labeled token corpora as instruction-tuning batches (reference §4.4).

A *labeled corpus* is an ordinary token corpus (``neurolm tokenize --labeled``) whose manifest has the
extra columns ``task`` (the LABELS task value, e.g. "HMC") and ``label`` (int) besides ``split``; every
sample is one labeled window. :func:`open_labeled` checks that (missing columns, unknown tasks, labels
outside a task's classes: one ConfigError each, before any work) and gives one :class:`LabeledSplit` per
split.

Mixing: all tasks of the corpus in one stream. By default, as the original (``ConcatDataset`` +
uniform shuffling), an epoch is a uniform permutation of all train samples, so tasks come in
proportion to their size. ``temperature`` T ≠ 1 rebalances: each position of the epoch draws its
task with p_task ∝ n_task^(1/T) (T → ∞: uniform over tasks) and takes that task's next sample from
its own shuffled cycle. The epoch keeps the corpus's length either way.

Resumable: the order of epoch ``e`` is a pure function of (seed, e, temperature), so batch ``k`` of
epoch ``e`` is the same in a resumed run (like :class:`neurolm.lm.data.EEGBatches`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from neurolm.corpus.reader import TokenCorpus
from neurolm.errors import ConfigError, StoreError
from neurolm.instruct.sequence import EEG_MAX_LEN, TEXT_MAX_LEN, TaskTexts, build_batch
from neurolm.instruct.tasks import get_task

LABEL_COLUMNS = ("task", "label")


def corpus_kind(lineage: dict[str, Any]) -> str | None:
    """The ``kind`` a corpus lineage declares (top level, identity or info), or None."""
    for part in (lineage, lineage.get("identity") or {}, lineage.get("info") or {}):
        if isinstance(part, dict) and part.get("kind") is not None:
            return str(part["kind"])
    return None


@dataclass
class LabeledSplit:
    """One split of a labeled corpus: its reader and, per selected sample, our task name and label."""

    split: str
    corpus: TokenCorpus
    tasks: np.ndarray  # our task names ("tuab"), one per selected sample
    labels: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.corpus)

    def counts(self) -> dict[str, int]:
        """Samples per task, in task order of first appearance sorted by name."""
        names, n = np.unique(self.tasks, return_counts=True)
        return {str(k): int(v) for k, v in zip(names, n)}

    def key(self, i: int) -> tuple[str, int]:
        return str(self.tasks[i]), int(self.labels[i])

    def row(self, i: int):
        """The manifest row of selected sample ``i``."""
        return self.corpus.manifest.iloc[int(self.corpus.selected[i])]


def _labels_of(corpus: TokenCorpus) -> tuple[np.ndarray, np.ndarray]:
    man = corpus.manifest
    missing = [c for c in LABEL_COLUMNS if c not in man.columns]
    if missing:
        raise ConfigError(f"corpus {corpus.version_id} is not a labeled corpus: its manifest has no {missing} "
                          "column(s) (make one with `neurolm tokenize --labeled`)")
    rows = man.iloc[corpus.selected]
    if rows["task"].isna().any() or rows["label"].isna().any():
        raise ConfigError(f"corpus {corpus.version_id}: {int(rows['label'].isna().sum())} samples have no label")
    by_value = {str(v): get_task(str(v)) for v in rows["task"].unique()}  # ConfigError: unknown task
    tasks = np.array([by_value[str(v)].name for v in rows["task"]], dtype=object)
    labels = rows["label"].to_numpy().astype(np.int64)
    for value, task in by_value.items():
        bad = labels[(rows["task"].astype(str) == value).to_numpy()]
        bad = np.unique(bad[(bad < 0) | (bad >= task.n_classes)])
        if len(bad):
            raise ConfigError(f"corpus {corpus.version_id}: task {value} has labels {bad.tolist()[:5]} outside "
                              f"0..{task.n_classes - 1}")
    return tasks, labels


def open_labeled(url: str, version: str | None = None,
                 splits: tuple[str, ...] = ("train", "val")) -> dict[str, LabeledSplit]:
    """One :class:`LabeledSplit` per split of a complete labeled corpus version (every split required)."""
    probe = TokenCorpus.open(url, version=version)
    kind = corpus_kind(probe.lineage)
    if kind not in (None, "labeled"):
        raise ConfigError(f"corpus {probe.version_id} is a {kind!r} corpus, not a labeled one")
    _labels_of(probe)  # columns, tasks and labels of every split, once
    have = set(probe.manifest["split"])
    missing = [s for s in splits if s not in have]
    if missing:
        raise ConfigError(f"labeled corpus {probe.version_id} has no {missing} split(s); it has {sorted(have)}")
    out = {}
    for s in splits:
        c = TokenCorpus.open(url, version=probe.version_id, splits=(s,))
        out[s] = LabeledSplit(s, c, *_labels_of(c))
    return out


def task_probabilities(counts: dict[str, int], temperature: float = 1.0) -> dict[str, float]:
    """p_task ∝ n_task^(1/T); T = 1 is proportional to size (the original)."""
    if temperature <= 0:
        raise ConfigError("temperature must be > 0")
    w = {k: float(n) ** (1.0 / temperature) for k, n in counts.items() if n > 0}
    tot = sum(w.values())
    return {k: v / tot for k, v in w.items()}


class InstructBatches:
    """Batches of one labeled split: ``epoch(e, start)`` yields :func:`build_batch` dicts (see module doc).

    ``signals`` (a :class:`neurolm.lm.data.SignalPatches`): also put the raw patches ``x`` into each
    batch, for a model in ``features`` mode.
    """

    def __init__(self, split: LabeledSplit, texts: TaskTexts, batch_size: int, seed: int = 0,
                 temperature: float = 1.0, shuffle: bool = True, drop_last: bool = True,
                 eeg_len: int = EEG_MAX_LEN, text_len: int = TEXT_MAX_LEN, signals=None) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be ≥ 1")
        if len(split) == 0:
            raise StoreError(f"the {split.split} split has no samples")
        self.split, self.texts, self.batch_size = split, texts, int(batch_size)
        self.seed, self.temperature = int(seed), float(temperature)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.eeg_len, self.text_len, self.signals = int(eeg_len), int(text_len), signals
        self.probabilities = task_probabilities(split.counts(), self.temperature)

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """Selected-sample indices of ``epoch`` in visiting order (a pure function of seed, epoch, T)."""
        n = len(self.split)
        if not self.shuffle:
            return np.arange(n)
        if self.temperature == 1.0:
            return np.random.default_rng([self.seed, int(epoch)]).permutation(n)
        names = sorted(self.probabilities)
        p = np.array([self.probabilities[k] for k in names])
        rng = np.random.default_rng([self.seed, int(epoch), 1])
        draw = rng.choice(len(names), size=n, p=p / p.sum())
        out = np.empty(n, dtype=np.int64)
        for t, name in enumerate(names):
            members = np.flatnonzero(self.split.tasks == name)
            slots = np.flatnonzero(draw == t)
            cycles = -(-len(slots) // len(members))
            seq = np.concatenate([np.random.default_rng([self.seed, int(epoch), 2, t, c]).permutation(members)
                                  for c in range(max(1, cycles))])
            out[slots] = seq[: len(slots)]
        return out

    def collate(self, idx: list[int]) -> dict[str, torch.Tensor]:
        samples = [self.split.corpus[i] for i in idx]
        b = build_batch(samples, [self.split.key(i) for i in idx], self.texts, self.eeg_len, self.text_len)
        if self.signals is not None:
            b["x"] = torch.stack([self.signals.sample(self.split.row(i), torch.from_numpy(s["ch"]),
                                                      torch.from_numpy(s["time"]), self.eeg_len)
                                  for i, s in zip(idx, samples)])
        return b

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of ``epoch`` from batch ``start`` on (skipped ones are neither read nor collated)."""
        order = self.order(epoch).tolist()
        for k in range(int(start), len(self)):
            yield self.collate(order[k * self.batch_size:(k + 1) * self.batch_size])
