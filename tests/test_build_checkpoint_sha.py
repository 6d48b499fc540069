"""A checkpoint's identity (sha256 of its weights file) depends only on the weights and metadata, not on
the process that wrote it: the safetensors writer orders its metadata map by hash, differently in every
process, which made identical tokenizers (and the token corpora keyed by them) differ run to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

from storage.checkpoints import checkpoint_sha256

REPO = Path(__file__).resolve().parents[1]
WRITE = """
import sys, torch
from storage.checkpoints import save_checkpoint
w = {"enc.weight": torch.arange(12.0).reshape(3, 4), "codebook": torch.ones(5, 2)}
meta = {"format": "neurolm-tokenizer-v1", "config_hash": "902e", "tokenizer_config": '{"name":"tiny"}', "z": "é"}
save_checkpoint(sys.argv[1], w, {"step": 3}, {"store_version": "v-1"}, metadata=meta)
"""


def test_the_same_weights_written_by_different_processes_have_one_sha256(tmp_path):
    shas = set()
    for i in range(4):  # each process has its own hash seed, so the writer's map order differs
        out = tmp_path / f"run{i}"
        subprocess.run([sys.executable, "-c", WRITE, str(out)], check=True, cwd=REPO,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        shas.add(checkpoint_sha256(str(out)))
        with safe_open(str(next(out.glob("ckpt-*/model.safetensors"))), "pt") as f:
            assert f.metadata()["z"] == "é" and f.metadata()["config_hash"] == "902e"
            assert f.get_tensor("enc.weight")[2, 3].item() == 11.0
    assert len(shas) == 1
