"""The premise of the demo's pretraining step, checked small: synthetic EEG with brain states gives
tokenizer codes whose next second is predictable from context (a bigram beats the unigram on held-out
recordings), stationary synthetic EEG does not, and a short pretraining run clears the unigram bar.

Everything goes through the real stages: signal store → tiny tokenizer trained on it → token corpus →
``neurolm.lm.run.pretrain``.
"""

from __future__ import annotations

import pytest
import torch

from neurolm.corpus.reader import TokenCorpus
from neurolm.corpus.run import tokenize_local
from neurolm.corpus.tokenize import prepare_job
from neurolm.lm.baselines import bigram_baseline, unigram_baseline
from neurolm.lm.data import EEGBatches
from neurolm.lm.params import PretrainParams
from neurolm.lm.run import pretrain
from neurolm.synth.store import synth_signal_store
from neurolm.tokenizer.params import TrainTokenizerParams
from neurolm.tokenizer.run import train_tokenizer

K = 512  # the tiny tokenizer's codebook


def _baselines(corpus: str) -> tuple[dict, dict]:
    train, val = TokenCorpus.open(corpus, splits=("train",)), TokenCorpus.open(corpus, splits=("val",))

    def batches():
        return EEGBatches(train, 8, 256, seed=0).epoch(0), EEGBatches(val, 8, 256, shuffle=False,
                                                                       drop_last=False).epoch(0)

    return unigram_baseline(*batches(), K), bigram_baseline(*batches(), K)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("pred")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synth_signal_store(str(d / "store"), n_recordings=8, seconds=120.0, n_ch=8, seed=0)
        synth_signal_store(str(d / "flat"), n_recordings=8, seconds=120.0, n_ch=8, seed=0, states=False)
        train_tokenizer(TrainTokenizerParams(store=str(d / "store"), out=str(d / "tok"), steps=TOK_STEPS,
                                             num_workers=0))
        for name in ("store", "flat"):
            tokenize_local(prepare_job(str(d / name), str(d / "tok"), str(d / f"c-{name}"), shard_size=256))
    finally:
        torch.set_num_threads(threads)
    return d


TOK_STEPS = 60


def test_states_make_codes_predictable_and_stationary_eeg_does_not(built):
    uni, big = _baselines(str(built / "c-store"))
    assert uni["tokens"] > 1000
    assert big["accuracy"] > 1.3 * uni["accuracy"] and big["loss"] < uni["loss"] - 0.05
    flat_uni, flat_big = _baselines(str(built / "c-flat"))
    assert flat_big["accuracy"] < 1.15 * flat_uni["accuracy"]  # no sequential structure: nothing to gain


def test_short_pretraining_beats_the_unigram_baseline(built, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        s = pretrain(PretrainParams(corpus=str(built / "c-store"), tokenizer=str(built / "tok"), out=str(tmp_path),
                                    config="tiny", steps=40, warmup_steps=4, lr=3e-3, batch_size=4,
                                    text_batch_size=0, max_len=256))
    finally:
        torch.set_num_threads(threads)
    v, b = s["val"], s["baseline"]
    assert v["accuracy"] > 1.3 * b["accuracy"] and v["loss"] < b["loss"]
    assert s["vs_unigram"]["accuracy_ratio"] == pytest.approx(v["accuracy"] / b["accuracy"])
    assert s["vs_unigram"]["loss_gap"] == pytest.approx(b["loss"] - v["loss"])
