"""Instruction tuning after kill -9: the same command again continues the uninterrupted trajectory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import torch

from neurolm.instruct.fixtures import save_untrained_model, write_labeled_corpus
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import load_history, prepare, tune
from storage.checkpoints import list_checkpoints, load_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from neurolm.instruct.params import TuneParams
    from neurolm.instruct.run import tune
    p = TuneParams.model_validate_json(sys.argv[1])
    slow = float(sys.argv[2])
    def emit(ev):
        if ev["event"] == "step" and ev["step"] >= 4:
            time.sleep(slow)  # this test's own pace: room to kill the run between checkpoints
    tune(p, emit=emit)
""")


def _child(p: TuneParams, slow: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", CHILD, p.model_dump_json(), str(slow)], env=env, cwd=REPO)


def test_kill_9_and_rerun_continues_the_same_trajectory(tmp_path):
    """Temperature mixing and reference positions on: every resumable part is exercised."""
    corpus = write_labeled_corpus(str(tmp_path / "c"), {"TUAB": 8, "HMC": 4})
    init = save_untrained_model(str(tmp_path / "init"))

    def params(out):
        return TuneParams(corpus=corpus, init=init, out=str(out), steps=10, batch_size=4, text_batch_size=1,
                          text_seq_len=16, eeg_len=24, ckpt_every=2, keep_last=1, temperature=2.0,
                          positions="reference", evaluate=False)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = tune(params(tmp_path / "a"))  # uninterrupted
    finally:
        torch.set_num_threads(threads)
    p = params(tmp_path / "b")
    run_dir = prepare(p).run_dir
    proc = _child(p, slow=1.0)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if [s for s, _ in list_checkpoints(os.path.join(run_dir, "checkpoints"))] == [4]:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the child ended before it could be killed"
    time.sleep(0.5)  # inside step 5..6: after checkpoint 4, before checkpoint 6
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = [s for s, _ in list_checkpoints(os.path.join(run_dir, "checkpoints"))]
    assert killed_at and killed_at[-1] < 10 and not os.path.exists(os.path.join(run_dir, "summary.json"))
    rerun = _child(p, slow=0.0)  # the same command again
    assert rerun.wait(timeout=300) == 0

    hist_a, val_a = load_history(ref["run_dir"])
    hist_b, val_b = load_history(run_dir)
    assert [h["step"] for h in hist_b] == list(range(1, 11))
    assert [h["loss"] for h in hist_b] == [h["loss"] for h in hist_a]  # bit-identical per-step losses
    assert [v["loss"] for v in val_b] == [v["loss"] for v in val_a]
    wa = load_checkpoint(list_checkpoints(os.path.join(ref["run_dir"], "checkpoints"))[-1][1]).weights
    wb = load_checkpoint(list_checkpoints(os.path.join(run_dir, "checkpoints"))[-1][1]).weights
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
