"""The kill -9 check of the LM stages (pretraining, instruction tuning): run A uninterrupted; run B in a child
process killed between checkpoints 4 and 6 and started again; B's trajectory must be A's, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import torch

from storage.checkpoints import list_checkpoints, load_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = textwrap.dedent("""
    import importlib, sys, time, torch
    torch.set_num_threads(1)
    def load(path):
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)
    params_cls, run = load(sys.argv[1]), load(sys.argv[2])
    p = params_cls.model_validate_json(sys.argv[3])
    slow = float(sys.argv[4])
    def emit(ev):
        if ev["event"] == "step" and ev["step"] >= 4:
            time.sleep(slow)  # this test's own pace: room to kill the run between checkpoints
    run(p, emit=emit)
""")


def _child(params_cls: str, run: str, p, slow: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", CHILD, params_cls, run, p.model_dump_json(), str(slow)], env=env,
                            cwd=REPO)


def run_single_threaded(run: Callable, p) -> dict:
    """``run(p)`` with one torch thread (as the child runs), the thread count restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(p)
    finally:
        torch.set_num_threads(threads)


def kill_9_and_rerun(params_cls: str, run: str, p, run_dir: str) -> None:
    """Run ``run`` (``"module:function"``) on ``p`` in a child, ``kill -9`` it after checkpoint 4 (``ckpt_every=2``,
    ``steps=10``, ``keep_last=1``), then run the same command again to the end."""
    proc = _child(params_cls, run, p, slow=1.0)
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
    rerun = _child(params_cls, run, p, slow=0.0)  # the same command again
    assert rerun.wait(timeout=300) == 0


def assert_same_trajectory(load_history: Callable, ref_dir: str, run_dir: str, steps: int = 10) -> dict:
    """Per-step and validation losses and the last checkpoint's weights of ``run_dir`` equal ``ref_dir``'s;
    → those weights."""
    hist_a, val_a = load_history(ref_dir)
    hist_b, val_b = load_history(run_dir)
    assert [h["step"] for h in hist_b] == list(range(1, steps + 1))
    assert [h["loss"] for h in hist_b] == [h["loss"] for h in hist_a]  # bit-identical per-step losses
    assert [v["loss"] for v in val_b] == [v["loss"] for v in val_a]
    wa = load_checkpoint(list_checkpoints(os.path.join(ref_dir, "checkpoints"))[-1][1]).weights
    wb = load_checkpoint(list_checkpoints(os.path.join(run_dir, "checkpoints"))[-1][1]).weights
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    return wa
