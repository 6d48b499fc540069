"""Instruction tuning after kill -9: the same command again continues the uninterrupted trajectory."""

from __future__ import annotations

from lm_resume import assert_same_trajectory, kill_9_and_rerun, run_single_threaded

from neurolm.instruct.fixtures import save_untrained_model, write_labeled_corpus
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import load_history, prepare, tune


def test_kill_9_and_rerun_continues_the_same_trajectory(tmp_path):
    """Temperature mixing and reference positions on: every resumable part is exercised."""
    corpus = write_labeled_corpus(str(tmp_path / "c"), {"TUAB": 8, "HMC": 4})
    init = save_untrained_model(str(tmp_path / "init"))

    def params(out):
        return TuneParams(corpus=corpus, init=init, out=str(out), steps=10, batch_size=4, text_batch_size=1,
                          text_seq_len=16, eeg_len=24, ckpt_every=2, keep_last=1, temperature=2.0,
                          positions="reference", evaluate=False)

    ref = run_single_threaded(tune, params(tmp_path / "a"))  # uninterrupted
    p = params(tmp_path / "b")
    run_dir = prepare(p).run_dir
    kill_9_and_rerun("neurolm.instruct.params:TuneParams", "neurolm.instruct.run:tune", p, run_dir)
    assert_same_trajectory(load_history, ref["run_dir"], run_dir)
