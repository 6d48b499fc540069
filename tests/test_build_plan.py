"""The build's plan without running a stage: which steps run after each kind of change, and why;
config errors with their YAML line and field; inputs wired from upstream outputs."""

from __future__ import annotations

import pytest
import yaml

from neurolm.build.config import LABELED_TOKENIZE, parse_config
from neurolm.build.plan import expand, plan, wire
from neurolm.errors import ConfigError


def _doc(tmp_path, **changes) -> dict:
    doc = {
        "name": "t",
        "outputs": {"root": str(tmp_path / "out")},
        "standardize": {},
        "sources": [{"source": str(tmp_path / "arch_a"), "dataset": "a"},
                    {"source": str(tmp_path / "arch_b"), "dataset": "b"}],
        "datasets": [{"dataset": "hmc", "root": str(tmp_path / "hmc")}],
        "train_tokenizer": {"config": "tiny", "steps": 10},
        "tokenize": {"workers": 0},
        "pretrain": {"config": "tiny", "steps": 5},
    }
    for path, value in changes.items():
        node = doc
        *head, last = path.split(".")
        for part in head:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value
    return doc


def _config(tmp_path, **changes):
    return parse_config(yaml.safe_dump(_doc(tmp_path, **changes)), "t.yaml")


def _completed(decisions, outputs=None) -> dict:
    """The build state after every step of ``decisions`` completed."""
    return {d.step: {"key": d.key, "config": dict(d.material), "outputs": (outputs or {}).get(d.step, {})}
            for d in decisions}


def _fingerprints(changed: str | None = None):
    return lambda url: "changed" if changed and url.endswith(changed) else "same"


def _plan(config, state, *, changed=None, exists=lambda _u: True, force=()):
    return plan(expand(config), state, fingerprint_fn=_fingerprints(changed), exists=exists, force=force)


def _runs(decisions) -> dict[str, str]:
    return {d.step: d.reason for d in decisions if d.run}


STEPS = ["ingest a", "ingest b", "ingest-dataset hmc", "train-tokenizer", "tokenize", "pretrain"]


@pytest.fixture()
def built(tmp_path):
    first = _plan(_config(tmp_path), {})
    return _completed(first)


def test_a_fresh_build_runs_every_step_in_order(tmp_path):
    decisions = _plan(_config(tmp_path), {})
    assert [d.step for d in decisions] == STEPS
    assert all(d.run and d.reason.startswith("not built yet") for d in decisions)


def test_an_unchanged_build_skips_everything(tmp_path, built):
    decisions = _plan(_config(tmp_path), built)
    assert not _runs(decisions)
    assert all(d.reason.startswith("up to date") for d in decisions)


def test_a_changed_standardization_redoes_everything(tmp_path, built):
    runs = _runs(_plan(_config(tmp_path, standardize={"notch_hz": 50.0}), built))
    assert list(runs) == STEPS
    assert runs["ingest a"] == runs["ingest-dataset hmc"] == "config changed: standardize"
    assert runs["train-tokenizer"].startswith("upstream changed: ingest a, ingest b, ingest-dataset hmc")
    assert runs["pretrain"] == "upstream changed: tokenize"


def test_a_changed_pretrain_config_redoes_pretrain_only(tmp_path, built):
    runs = _runs(_plan(_config(tmp_path, **{"pretrain.steps": 6, "pretrain.lr": 1e-3}), built))
    assert runs == {"pretrain": "config changed: lr, steps"}


def test_a_changed_tokenizer_config_redoes_tokenizer_and_what_follows(tmp_path, built):
    runs = _runs(_plan(_config(tmp_path, **{"train_tokenizer.steps": 11}), built))
    assert list(runs) == ["train-tokenizer", "tokenize", "pretrain"]
    assert runs["train-tokenizer"] == "config changed: steps"
    assert runs["tokenize"] == "upstream changed: train-tokenizer"


def test_new_files_in_one_archive_redo_its_ingestion_and_what_follows(tmp_path, built):
    runs = _runs(_plan(_config(tmp_path), built, changed="arch_b"))
    assert list(runs) == ["ingest b", "train-tokenizer", "tokenize", "pretrain"]
    assert runs["ingest b"].startswith("input files changed under ")


def test_runtime_only_fields_change_nothing(tmp_path, built):
    config = _config(tmp_path, **{"sources.0.workers": 7, "sources.1.batch_size": 3, "tokenize.workers": 2,
                                  "pretrain.keep_last": 5, "datasets.0.lock_timeout_s": 99.0})
    assert not _runs(_plan(config, built))


def test_a_missing_output_is_rebuilt(tmp_path):
    first = _plan(_config(tmp_path), {})
    corpus = str(tmp_path / "out" / "corpus")
    state = _completed(first, {"tokenize": {"corpus": corpus, "corpus_version": "c-1"}})
    runs = _runs(_plan(_config(tmp_path), state, exists=lambda u: u != corpus))
    assert runs == {"tokenize": f"output missing: {corpus}"}


def test_force_runs_a_step_that_is_up_to_date(tmp_path, built):
    runs = _runs(_plan(_config(tmp_path), built, force=("pretrain",)))
    assert runs == {"pretrain": "forced (--force)"}


def test_an_interrupted_step_runs_again_and_only_it(tmp_path, built):
    state = {k: v for k, v in built.items() if k != "train-tokenizer"}  # killed while training the tokenizer
    runs = _runs(_plan(_config(tmp_path), state))
    assert list(runs) == ["train-tokenizer"]  # tokenize and pretrain keep their keys: same inputs
    state = {k: v for k, v in built.items() if k not in ("train-tokenizer", "tokenize", "pretrain")}
    assert list(_runs(_plan(_config(tmp_path), state))) == ["train-tokenizer", "tokenize", "pretrain"]


def test_inputs_are_wired_from_upstream_outputs_and_the_tokenizer_gets_a_keyed_folder(tmp_path):
    config = _config(tmp_path)
    steps = {s.name: s for s in expand(config)}
    outputs = {"ingest-dataset hmc": {"store": "/s", "store_version": "v-1"},
               "train-tokenizer": {"checkpoint": "/tok/t-1/ckpt", "checkpoint_sha256": "ab"},
               "tokenize": {"corpus": "/c", "corpus_version": "c-9"}}
    tok = wire(steps["train-tokenizer"], "0123456789abcdef", outputs)
    assert (tok.store, tok.version, tok.steps) == ("/s", "v-1", 10)
    assert tok.out == str(tmp_path / "out" / "tokenizer" / "t-0123456789ab")
    t = wire(steps["tokenize"], "k", outputs)
    assert (t.store, t.store_version, t.tokenizer, t.out) == ("/s", "v-1", "/tok/t-1/ckpt", str(tmp_path / "out" / "corpus"))
    p = wire(steps["pretrain"], "k", outputs)
    assert (p.corpus, p.corpus_version, p.out) == ("/c", "c-9", str(tmp_path / "out" / "pretrain"))


def test_outputs_default_under_the_root_and_can_be_urls(tmp_path):
    config = _config(tmp_path, outputs={"root": str(tmp_path / "r"), "corpus": "memory://corpora/x"})
    assert config.sources[0].store == str(tmp_path / "r" / "store")
    assert config.tokenize.out == "memory://corpora/x" and config.pretrain.corpus == "memory://corpora/x"


def test_labeled_corpus_step_follows_the_tokenize_stage(tmp_path):
    doc = _doc(tmp_path)
    doc["tokenize_labeled"] = {"workers": 0}
    config = parse_config(yaml.safe_dump(doc), "t.yaml")
    names = [s.name for s in expand(config)]
    if LABELED_TOKENIZE:
        assert names.index("tokenize-labeled") > names.index("train-tokenizer") and config.tokenize_labeled.labeled
    else:
        assert "tokenize-labeled" not in names and "labeled" in config.notes[0]


def _stage3(tmp_path, **tune) -> dict:
    doc = _doc(tmp_path)
    doc.update(tokenize_labeled={"workers": 0}, tune={"steps": 4, **tune}, evaluate={"splits": ["test"]})
    return doc


def test_a_changed_tuning_config_redoes_tuning_and_evaluation_only(tmp_path):
    built = _completed(_plan(parse_config(yaml.safe_dump(_stage3(tmp_path)), "t.yaml"), {}))
    assert list(built)[-2:] == ["tune", "evaluate"]
    changed = parse_config(yaml.safe_dump(_stage3(tmp_path, lr=1e-3)), "t.yaml")
    assert _runs(_plan(changed, built)) == {"tune": "config changed: lr", "evaluate": "upstream changed: tune"}
    pre = _doc(tmp_path, **{"pretrain.steps": 6})
    pre.update({k: v for k, v in _stage3(tmp_path).items() if k in ("tokenize_labeled", "tune", "evaluate")})
    runs = _runs(_plan(parse_config(yaml.safe_dump(pre), "t.yaml"), built))
    assert list(runs) == ["pretrain", "tune", "evaluate"]


def test_tuning_and_evaluation_are_wired_to_the_pretrained_model_and_the_labeled_corpus(tmp_path):
    config = parse_config(yaml.safe_dump(_stage3(tmp_path)), "t.yaml")
    assert config.tune.evaluate is False  # the build evaluates in a stage of its own
    steps = {s.name: s for s in expand(config)}
    outputs = {"pretrain": {"model": "/p/run-1/model"}, "tokenize-labeled": {"corpus": "/l", "corpus_version": "c-2"},
               "tune": {"model": "/t/run-3/model"}}
    t = wire(steps["tune"], "k", outputs)
    assert (t.init, t.corpus, t.corpus_version, t.out) == ("/p/run-1/model", "/l", "c-2", str(tmp_path / "out" / "tune"))
    e = wire(steps["evaluate"], "k", outputs)
    assert (e.models, e.corpus, e.corpus_version) == (("/t/run-3/model",), "/l", "c-2")
    doc = _doc(tmp_path)
    doc["tune"] = {"steps": 4}
    with pytest.raises(ConfigError, match="tokenize_labeled"):
        parse_config(yaml.safe_dump(doc), "t.yaml")


BAD = """\
name: bad
outputs:
  root: /tmp/x
sources:
  - source: /tmp/src
    workers: 0
train_tokenizer:
  config: tiny
tokenize:
  out: /elsewhere
pretrain:
  steps: many
"""


def test_config_errors_name_line_and_field():
    with pytest.raises(ConfigError) as err:
        parse_config(BAD, "bad.yaml")
    assert str(err.value) == "bad.yaml line 10: tokenize.out: set by the build (outputs.corpus); remove it"
    fixed = BAD.replace("tokenize:\n  out: /elsewhere", "tokenize: {}")
    with pytest.raises(ConfigError) as err:
        parse_config(fixed, "bad.yaml")
    lines = str(err.value).splitlines()
    assert any(line.startswith("bad.yaml line 6: sources.0.workers: ") and "must be >= 1" in line for line in lines)
    assert any(line.startswith("bad.yaml line 11: pretrain.steps: ") for line in lines)
    with pytest.raises(ConfigError, match=r"line 2: pretrian: Extra inputs are not permitted"):
        parse_config("name: x\npretrian: {}\n", "typo.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("a: [1,\n", "broken.yaml")


@pytest.mark.parametrize("name", ["demo", "paper"])
def test_the_shipped_configs_are_valid(name):
    from pathlib import Path

    from neurolm.build.config import load_config

    config = load_config(str(Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"))
    steps = [s.name for s in expand(config)]
    assert steps[-3:] == ["train-tokenizer", "tokenize", "pretrain"] or "tokenize-labeled" in steps
    assert len(config.datasets) == 6
