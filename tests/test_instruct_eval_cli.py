"""`neurolm evaluate` end to end: JSON fields, tables, the RESULTS table, artifacts, and errors before work."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from neurolm.cli import main
from neurolm.corpus.synthetic import write_synthetic_corpus
from neurolm.instruct.eval_params import EvaluateParams
from neurolm.instruct.evaluate import evaluate
from neurolm.instruct.eval_fixtures import write_labeled_corpus
from neurolm.lm.config import lm_preset
from neurolm.lm.io import save_lm
from neurolm.lm.model import NeuroLM
from neurolm.lm.text import load_gpt2_bpe

# (task, label, split, n_ch, n_sec): TUAB both classes in val and test, HMC every stage in test
WINDOWS = ([("TUAB", lab, "val", 4, 5) for lab in (0, 1, 1)] + [("TUAB", lab, "test", 4, 5) for lab in (0, 0, 1, 1, 1)]
           + [("HMC", lab, "test", 4, 6) for lab in (0, 1, 2, 3, 4, 4, 2)] + [("HMC", 1, "train", 4, 6)])


def yes_model(directory: str) -> str:
    """A tiny model whose every text output prefers the token " Yes" (constant final hidden state)."""
    torch.manual_seed(0)
    m = NeuroLM(lm_preset("tiny")).eval()
    yes = load_gpt2_bpe("auto").encode(" Yes")[0]
    with torch.no_grad():
        e = torch.randn(m.config.n_embd)
        m.gpt.ln_f.weight.zero_()
        m.gpt.ln_f.bias.copy_(e)
        m.lm_head.weight.mul_(0.01)
        m.lm_head.weight[yes] = 10 * e / e.dot(e)
    return save_lm(m, directory)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("evalcli")
    corpus = str(d / "corpus")
    write_labeled_corpus(corpus, WINDOWS)
    return d, corpus, yes_model(str(d / "model"))


def _expected(task: str, split: str) -> np.ndarray:
    return np.array([lab for t, lab, s, _, _ in WINDOWS if t == task and s == split])


def test_cli_json_fields_tables_and_artifacts(setup, capsys):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.runtime import prefect_server
    from schemas.io import read_table
    from schemas.tables import RESULTS

    d, corpus, model = setup
    out = str(d / "out")
    with prefect_server():
        assert main(["evaluate", model, "--corpus", corpus, "--json", "--metrics", "reference", "--out", out]) == 0
        rows = json.loads(capsys.readouterr().out)
        with get_client(sync_client=True) as client:
            arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
                any_=["neurolm-eval-report", "neurolm-eval-confusion-hmc-test"])))
    assert [(r["task"], r["split"]) for r in rows] == [("tuab", "val"), ("tuab", "test"), ("hmc", "test")]
    assert {r["positions"] for r in rows} == {"own"}
    for r in rows:
        y = _expected(r["task"].upper(), r["split"])
        assert r["n"] == len(y)
        assert {"balanced_accuracy", "unparsable", "accuracy", "gen_accuracy", "ref_balanced_accuracy"} <= set(r)
    tuab = rows[1]
    y = _expected("TUAB", "test")
    # every answer generated is " Yes" (parsed, class 1); the options get the same probabilities for all samples
    assert tuab["unparsable"] == 0 and tuab["gen_accuracy"] == pytest.approx(float((y == 1).mean()))
    assert tuab["roc_auc"] == pytest.approx(0.5) and {"pr_auc", "roc_auc"} <= set(tuab)
    hmc = rows[2]
    y = _expected("HMC", "test")
    # after "Answer: (" the model says "Yes": never a class → all unparsable, honest accuracy 0;
    # the original's way maps them to the last class (REM), which is right for the REM windows
    assert hmc["unparsable"] == len(y) and hmc["gen_accuracy"] == 0.0
    assert hmc["ref_accuracy"] == pytest.approx(float((y == 4).mean()))
    assert {"cohen_kappa", "f1_weighted"} <= set(hmc) and "roc_auc" not in hmc
    table = read_table(os.path.join(out, "results.parquet"), RESULTS)
    assert set(table["source"]) == {"ours: option scoring", "ours: generation", "ours: original's way"}
    assert table["synthetic"].all()
    md = open(os.path.join(out, "tables.md"), encoding="utf-8").read()
    assert "Synthetic corpus" in md and "NeuroLM-B" not in md and "### HMC — test (n = 7)" in md
    keys = {a.key for a in arts}
    assert keys == {"neurolm-eval-report", "neurolm-eval-confusion-hmc-test"}
    report = next(str(a.data) for a in arts if a.key == "neurolm-eval-report")
    assert report.count("data:image/png;base64,") == 1 + len(rows)


def test_real_corpus_gets_the_published_row_on_test_only(setup):
    d, corpus, model = setup
    s = evaluate(EvaluateParams(models=(model, model), corpus=corpus, out=str(d / "real"), synthetic=False,
                                tasks=("tuab",)))
    md = open(s["files"]["tables_md"], encoding="utf-8").read()
    val, test = md.split("### TUAB — test")
    assert "NeuroLM-B (published)" not in val
    assert "| NeuroLM-B (published) | 0.7826 ± 0.0065 | 0.6975 ± 0.0081 | 0.7816 ± 0.0079 |" in test
    # two model folders: mean ± std (the same model twice: std 0)
    assert "mean ± std over 2 models" in md and s["results"][0]["std"]["balanced_accuracy"] == 0.0
    # honest metrics only unless asked: no original's-way columns or row
    assert not any(k.startswith("ref_") for k in s["results"][0]) and "original's way" not in md


def test_errors_before_any_work(setup, tmp_path, capsys):
    d, corpus, model = setup
    plain = str(tmp_path / "plain")
    write_synthetic_corpus(plain, 4, codebook_size=512)
    assert main(["evaluate", model, "--corpus", plain]) == 2
    assert "not a labeled corpus" in capsys.readouterr().err
    unknown = str(tmp_path / "unknown")
    write_labeled_corpus(unknown, [("MNIST", 0, "test", 2, 2)])
    assert main(["evaluate", model, "--corpus", unknown]) == 2
    assert "unknown task 'MNIST'" in capsys.readouterr().err
    long = str(tmp_path / "long")
    write_labeled_corpus(long, [("TUAB", 0, "test", 23, 13)])
    assert main(["evaluate", model, "--corpus", long]) == 2
    assert "299 EEG tokens, more than NeuroLM's 276" in capsys.readouterr().err
    other = str(tmp_path / "other")
    write_labeled_corpus(other, WINDOWS, tokenizer_sha256="b" * 64)
    with open(os.path.join(model, "lineage.json"), "w") as f:
        json.dump({"pretrain": {"tokenizer_sha256": "a" * 64}}, f)
    try:
        assert main(["evaluate", model, "--corpus", other]) == 2
        assert "tokenizer checkpoint aaaa" in capsys.readouterr().err
    finally:
        os.remove(os.path.join(model, "lineage.json"))
    assert main(["evaluate", model, "--corpus", corpus, "--tasks", "seed"]) == 2
    assert "not in the corpus" in capsys.readouterr().err
