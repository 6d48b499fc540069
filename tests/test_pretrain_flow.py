"""`neurolm pretrain` through the Prefect flow (progress + report artifacts, the curves inside the report),
its rerun doing nothing, early errors as exit code 2; `neurolm import-weights` writing a loadable model folder."""

from __future__ import annotations

import base64
import os
import re

import torch
from lm_cli import run_report, run_twice
from test_lm_weights import save_resume_dict
from test_pretrain_resume import short_corpus

from neurolm.cli import main
from neurolm.corpus.fixtures import save_random_tokenizer


def test_cli_flow_artifacts_and_rerun(tmp_path, capsys):
    corpus, tok = short_corpus(str(tmp_path / "corpus")), save_random_tokenizer(str(tmp_path / "tok"), "tiny")
    args = ["pretrain", "--corpus", corpus, "--tokenizer", tok, "--config", "tiny", "--out", str(tmp_path / "runs"),
            "--steps", "4", "--batch-size", "2", "--text-seq-len", "16", "--max-len", "32"]
    first, again, arts = run_twice(args, capsys, ["neurolm-pretrain-progress", "neurolm-pretrain-report"])
    assert "trained 4 steps" in first.out and "unigram baseline" in first.out
    assert "nothing to do" in again.out
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1 and runs[0].startswith("run-")
    kinds = {(a.key, a.type) for a in arts}
    assert {("neurolm-pretrain-progress", "progress"), ("neurolm-pretrain-report", "markdown")} <= kinds
    report = run_report(arts, "neurolm-pretrain-report", runs[0])
    assert runs[0][4:] in report and "unigram baseline" in report and "tokenizer_sha256" in report
    m = re.search(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", report)
    assert m, "the curves are not embedded in the report"
    png = base64.b64decode(m.group(1))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    with open(tmp_path / "runs" / runs[0] / "curves.png", "rb") as f:
        assert f.read() == png
    # an input error: one line, exit code 2, before any server or run
    assert main(args[:2] + [str(tmp_path / "nowhere")] + args[3:]) == 2
    assert "neurolm pretrain: error" in capsys.readouterr().err


def test_import_weights_cli_writes_a_model_folder(tmp_path, capsys):
    from transformers import GPT2Model

    from neurolm.lm.io import load_lm

    path, sd = save_resume_dict(tmp_path, 48, 2, 4)
    out = str(tmp_path / "imported")
    assert main(["import-weights", path, "--out", out]) == 0
    assert "conv_norm=reference" in capsys.readouterr().out
    model = load_lm(out)
    cfg = model.config
    assert (cfg.input_mode, cfg.tokenizer.encoder_attention, cfg.tokenizer.conv_norm) == ("features", "full",
                                                                                          "reference")
    assert torch.equal(model.chan_embed.weight, sd["pos_embed.weight"])
    backbone = GPT2Model.from_pretrained(out)
    assert torch.equal(backbone.wte.weight, sd["GPT2.transformer.wte.weight"])
    assert main(["import-weights", str(tmp_path / "missing.pt"), "--out", out]) == 2
