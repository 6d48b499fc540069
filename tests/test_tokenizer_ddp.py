"""DDP: two gloo processes (torchrun, CPU) reach the same weights as one process on the combined batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch

from neurolm.tokenizer import load_tokenizer, preset, train_preset
from neurolm.tokenizer.synthetic import rhythm_dataset
from neurolm.tokenizer.train import train

# k-means initialisation sees only rank 0's batch (then broadcasts): switched off here so the
# two runs can be compared; dead-code re-seeding likewise.
CFG = dict(max_tokens=32, kmeans_iters=0)
TRAIN = dict(steps=3, batch_size=2, log_every=1, ckpt_every=3, warmup_steps=1, dead_code_every=0, text_seq_len=8)

SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from neurolm.tokenizer import preset, train_preset
    from neurolm.tokenizer.synthetic import rhythm_dataset
    from neurolm.tokenizer.train import train
    cfg = preset("tiny", **{cfg})
    tc = train_preset("tiny", **{{**{train}, "batch_size": 1}})
    train(cfg, tc, rhythm_dataset(8, n_ch=4, seconds=8, max_tokens=32), sys.argv[1])
""")


def test_two_gloo_ranks_match_one_process(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT.format(cfg=CFG, train=TRAIN))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", str(script), str(tmp_path / "ddp")],
                          env=env, capture_output=True, text=True, timeout=240, start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(preset("tiny", **CFG), train_preset("tiny", **TRAIN), rhythm_dataset(8, n_ch=4, seconds=8, max_tokens=32),
              str(tmp_path / "single"))
    finally:
        torch.set_num_threads(n)
    a, b = load_tokenizer(str(tmp_path / "ddp")), load_tokenizer(str(tmp_path / "single"))
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(v, w, atol=2e-5, rtol=1e-4, msg=k)
