"""Labeled corpora as instruction batches: columns and labels checked, tasks mixed as the original or by
temperature, batch k of an epoch a pure function of (seed, epoch)."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.io import TableValidationError
import torch

from neurolm.errors import ConfigError
from neurolm.instruct.data import InstructBatches, open_labeled, task_probabilities
from neurolm.instruct.fixtures import write_labeled_corpus
from neurolm.instruct.sequence import TaskTexts
from neurolm.lm.text import load_gpt2_bpe
from schemas.io import write_table
from schemas.tables import CORPUS_MANIFEST
from storage import fs
from storage.token_corpus import TokenCorpusStore


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_labeled_corpus(str(tmp_path_factory.mktemp("lab") / "c"), {"TUAB": 40, "HMC": 4})


@pytest.fixture(scope="module")
def texts():
    return TaskTexts(load_gpt2_bpe("auto"))


def test_splits_tasks_and_labels_are_read(corpus):
    s = open_labeled(corpus)
    assert s["train"].counts() == {"hmc": 15, "tuab": 60} and s["val"].counts() == {"hmc": 5, "tuab": 20}
    man = s["train"].corpus.manifest
    for i in (0, 7, len(s["train"]) - 1):
        row = man.iloc[int(s["train"].corpus.selected[i])]
        assert s["train"].key(i) == (str(row["task"]).lower(), int(row["label"]))
    assert int(s["train"].corpus[0]["codes"].shape[0]) == int(s["train"].row(0)["n_tokens"])


def test_proportional_mixing_is_a_permutation_and_resumable(corpus, texts):
    train = open_labeled(corpus)["train"]
    a = InstructBatches(train, texts, 5, seed=3)
    b = InstructBatches(train, texts, 5, seed=3)
    assert sorted(a.order(0).tolist()) == list(range(len(train)))  # every sample once: size-proportional
    assert np.array_equal(a.order(1), b.order(1)) and not np.array_equal(a.order(0), a.order(1))
    full = list(a.epoch(1))
    resumed = list(b.epoch(1, start=4))
    assert len(full) == len(train) // 5 and len(resumed) == len(full) - 4
    for x, y in zip(full[4:], resumed):
        assert all(torch.equal(x[k], y[k]) for k in x)


def test_temperature_rebalances_tasks(corpus, texts):
    train = open_labeled(corpus)["train"]
    p = task_probabilities(train.counts(), 1.0)
    assert p == pytest.approx({"hmc": 0.2, "tuab": 0.8})
    assert task_probabilities(train.counts(), 1e9) == pytest.approx({"hmc": 0.5, "tuab": 0.5})
    hot = InstructBatches(train, texts, 5, seed=0, temperature=1000.0)
    seen = train.tasks[np.concatenate([hot.order(e) for e in range(20)])]
    share = float(np.mean(seen == "hmc"))
    assert 0.45 < share < 0.55  # vs 0.2 proportionally
    assert np.array_equal(hot.order(2), InstructBatches(train, texts, 5, seed=0, temperature=1000.0).order(2))
    with pytest.raises(ConfigError, match="temperature"):
        task_probabilities(train.counts(), 0.0)


def _rewrite(url: str, **columns) -> str:
    v = TokenCorpusStore.open(url).resolve()
    man = v.manifest()
    for k, val in columns.items():
        if val is None:
            man = man.drop(columns=[k])
        else:
            man[k] = val(man[k]) if callable(val) else val
    write_table(man, CORPUS_MANIFEST, fs.join(v.url, "tables", "manifest.parquet"))
    return url


def test_bad_labeled_corpora_are_refused(tmp_path):
    def fresh(name):
        return write_labeled_corpus(str(tmp_path / name), {"TUAB": 4})

    # a labeled corpus's manifest is schema-checked when read (LABELED_MANIFEST): the column is named
    with pytest.raises((ConfigError, TableValidationError), match="not a labeled corpus|missing column 'label'"):
        open_labeled(_rewrite(fresh("a"), label=None))
    with pytest.raises(ConfigError, match="unknown task 'MNIST'"):
        open_labeled(_rewrite(fresh("b"), task="MNIST"))
    with pytest.raises(ConfigError, match=r"labels \[2\] outside 0..1"):
        open_labeled(_rewrite(fresh("c"), label=lambda s: s * 2))
    with pytest.raises(ConfigError, match="no \\['val'\\] split"):
        open_labeled(write_labeled_corpus(str(tmp_path / "d"), {"TUAB": 4}, splits={"train": 1.0}))
