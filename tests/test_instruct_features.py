"""Instruction tuning and evaluation in `features` mode (the path of imported NeuroLM weights): the EEG inputs
are the frozen encoder's features of the store's signal, read through the labeled corpus's lineage."""

from __future__ import annotations

import os

import pytest
import torch

from neurolm.corpus.fixtures import save_random_tokenizer
from neurolm.corpus.labeled import prepare_labeled_job
from neurolm.corpus.run import tokenize_local
from neurolm.datasets.ingest import ingest_dataset, make_dataset_params
from neurolm.datasets.synth import synth_dataset
from neurolm.errors import StoreError
from neurolm.instruct.eval_params import EvaluateParams
from neurolm.instruct.evaluate import evaluate
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import tune
from neurolm.lm.config import lm_preset
from neurolm.lm.data import attach_tokenizer
from neurolm.lm.io import load_lm, save_lm
from neurolm.lm.model import NeuroLM


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    d = tmp_path_factory.mktemp("features")
    store = str(d / "store")
    m = synth_dataset("workload", d / "workload", seed=0)
    ingest_dataset(make_dataset_params(dataset="workload", root=m["root"], store=store, split="seeded"))
    ckpt = save_random_tokenizer(str(d / "tok"), "tiny", seed=0)
    tokenize_local(prepare_labeled_job(store, ckpt, str(d / "corpus"), shard_size=64), batch_size=16)
    torch.manual_seed(0)
    init = NeuroLM(lm_preset("tiny", input_mode="features"), chan_init_std=0.02)
    attach_tokenizer(init, ckpt)
    save_lm(init.eval(), str(d / "init"))
    s = tune(TuneParams(corpus=str(d / "corpus"), init=str(d / "init"), out=str(d / "o"), steps=2, batch_size=4,
                        text_batch_size=1, text_seq_len=16))
    return d, s


def test_features_mode_tunes_and_evaluates_from_the_store(tuned):
    d, s = tuned
    assert s["input_mode"] == "features" and s["steps"] == 2
    model, init = load_lm(s["model_dir"]), load_lm(str(d / "init"))
    assert model.config.input_mode == "features" and model.tokenizer is not None  # the encoder travels along
    frozen = {k: v for k, v in init.state_dict().items() if k.startswith("tokenizer.")}
    tuned_sd = model.state_dict()
    assert frozen and all(torch.equal(tuned_sd[k], v) for k, v in frozen.items())  # frozen: not trained
    assert any(not torch.equal(tuned_sd[k], v) for k, v in init.state_dict().items()
               if not k.startswith("tokenizer."))  # the rest was
    ev = evaluate(EvaluateParams(models=(s["model_dir"],), corpus=str(d / "corpus"), splits=("val",), max_samples=8))
    (row,) = ev["results"]
    assert (row["task"], row["split"], row["n"]) == ("workload", "val", 8) and row["unparsable"] >= 0


def test_features_mode_without_its_store_is_a_clear_error(tuned):
    d, s = tuned
    os.rename(d / "store", d / "store-moved")
    try:
        with pytest.raises(StoreError, match="no signal store"):
            evaluate(EvaluateParams(models=(s["model_dir"],), corpus=str(d / "corpus"), splits=("val",)))
    finally:
        os.rename(d / "store-moved", d / "store")
