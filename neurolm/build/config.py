"""The build config: one YAML file naming the inputs, each stage's params and where outputs go.

Why the stages' own params models: a section of the config *is* the stage's params
(``sources`` are :class:`~neurolm.ingest.config.IngestParams`, ``pretrain`` is
:class:`~neurolm.lm.params.PretrainParams`, ...), so the CLI, the Prefect UI forms and
the build share one set of fields, defaults and checks. The fields that chain stages
(where a stage writes, which store / checkpoint / corpus it reads) are the build's,
not the user's: :data:`WIRED` lists them, the loader fills them from ``outputs`` and
refuses a config that sets them ("set by the build").

Relative paths are taken from the current directory (as on the command line); they
are made absolute at load time so the build's keys and outputs do not depend on it.
Errors name the YAML line and the field: ``configs/x.yaml line 12: pretrain.steps: ...``.
"""

from __future__ import annotations

import os
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from neurolm.corpus.params import TokenizeParams
from neurolm.datasets.ingest import DatasetIngestParams
from neurolm.errors import ConfigError
from neurolm.ingest.config import IngestParams
from neurolm.instruct.eval_params import EvaluateParams
from neurolm.instruct.params import TuneParams
from neurolm.lm.params import PretrainParams
from neurolm.standardize import StandardizeConfig
from neurolm.tokenizer.params import TrainTokenizerParams
from storage import fs

#: Whether this checkout's tokenize stage makes labeled corpora (``neurolm tokenize --labeled``).
LABELED_TOKENIZE = "labeled" in TokenizeParams.model_fields

#: section -> {params field: output location name}: where each stage writes / what it reads, set by the build.
WIRED: dict[str, dict[str, str]] = {
    "sources": {"store": "store"},
    "datasets": {"store": "store"},
    "train_tokenizer": {"store": "store", "out": "tokenizer"},
    "tokenize": {"store": "store", "tokenizer": "tokenizer", "out": "corpus"},
    "tokenize_labeled": {"store": "store", "tokenizer": "tokenizer", "out": "labeled_corpus"},
    "pretrain": {"corpus": "corpus", "out": "pretrain"},
    # init / models name the pretrain / tune runs roots here; the build sets the exact model folder at run time
    "tune": {"corpus": "labeled_corpus", "init": "pretrain", "out": "tune"},
    "evaluate": {"corpus": "labeled_corpus", "models": "tune"},
}
#: Wired fields that hold a list of locations.
LIST_FIELDS = ("models",)
#: Params fields that name a local path or URL a user gives (made absolute at load time).
PATH_FIELDS = ("source", "root", "text", "text_tokens", "config", "bpe")


class Outputs(BaseModel):
    """Where the build writes; each location defaults to a folder under ``root``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: str = Field(description="the build's output root (local path or fsspec URL); holds build-state.json")
    store: str | None = Field(None, description="signal store URL; default ROOT/store")
    tokenizer: str | None = Field(None, description="tokenizer runs folder (one t-<key> run per distinct input); "
                                                    "default ROOT/tokenizer")
    corpus: str | None = Field(None, description="pretraining token corpus root; default ROOT/corpus")
    labeled_corpus: str | None = Field(None, description="labeled token corpus root; default ROOT/corpus-labeled")
    pretrain: str | None = Field(None, description="pretraining runs root; default ROOT/pretrain")
    tune: str | None = Field(None, description="instruction-tuning runs root; default ROOT/tune (each run's "
                                               "evaluation goes to RUN/evaluation/)")

    def location(self, name: str) -> str:
        default = {"labeled_corpus": "corpus-labeled"}.get(name, name)
        return fs.normalize_url(getattr(self, name) or fs.join(fs.normalize_url(self.root), default))


class SynthCorpus(BaseModel):
    """A generated mixed-format archive (``neurolm synth``), for demos and tests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out: str = Field(description="folder the archive is written to (a source of `sources` names it)")
    recordings: int = Field(24, ge=1, description="good recordings")
    formats: tuple[str, ...] = Field(("edf", "bdf", "gdf", "fif", "brainvision", "eeglab"), description="file formats")
    minutes: float = Field(1.0, gt=0, description="mean recording length in minutes")
    malformed: int = Field(5, ge=0, description="malformed files among them")
    seed: int = Field(0, description="generator seed")
    layout: str = Field("flat", description="flat, tuh or bids")


class Synth(BaseModel):
    """Inputs the build generates itself before ingesting them (a demo needs no download)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    corpus: SynthCorpus | None = Field(None, description="a generated archive")
    datasets: dict[str, str] = Field(default_factory=dict,
                                     description="labeled dataset name -> folder its synthetic fixture goes to")
    seed: int = Field(0, description="seed of the dataset fixtures")


class BuildConfig(BaseModel):
    """A whole build: inputs, stage params, output locations (see configs/demo.yaml, configs/paper.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("build", description="the build's name (run names, report title)")
    outputs: Outputs = Field(description="where the build writes")
    synth: Synth | None = Field(None, description="generated inputs (demo): written before ingestion")
    standardize: StandardizeConfig = Field(default_factory=StandardizeConfig,
                                           description="standardization of the store version every source goes to")
    sources: tuple[IngestParams, ...] = Field(description="archives ingested for pretraining (ingest stage)")
    datasets: tuple[DatasetIngestParams, ...] = Field((), description="labeled datasets (ingest-dataset stage)")
    train_tokenizer: TrainTokenizerParams = Field(description="tokenizer training (train-tokenizer stage)")
    tokenize: TokenizeParams = Field(description="the pretraining token corpus (tokenize stage)")
    tokenize_labeled: TokenizeParams | None = Field(
        None, description="the labeled token corpus (tokenize --labeled); needs a tokenize stage with `labeled`")
    pretrain: PretrainParams = Field(description="stage-2 pretraining (pretrain stage)")
    tune: TuneParams | None = Field(None, description="stage-3 multi-task instruction tuning (tune stage); needs "
                                                      "tokenize_labeled")
    evaluate: EvaluateParams | None = Field(None, description="evaluation of the tuned model on the labeled corpus "
                                                              "(evaluate stage); needs tune")

    @model_validator(mode="before")
    @classmethod
    def _wire(cls, data: Any) -> Any:
        """Fill each section's wired fields with the output locations; refuse them when the user set them."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        try:
            outputs = Outputs.model_validate(data.get("outputs"))
        except ValidationError:
            return data  # reported by the field's own validation
        for section, wires in WIRED.items():
            value = data.get(section)
            if value is None:
                continue
            items = value if isinstance(value, list | tuple) else [value]
            wired = []
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    wired.append(item)
                    continue
                where = f"{section}[{i}]" if isinstance(value, list | tuple) else section
                for fld, loc in wires.items():
                    if fld in item:
                        raise ValueError(f"{where}.{fld} is set by the build (outputs.{loc}); remove it")
                item = {**item, **{fld: ([outputs.location(loc)] if fld in LIST_FIELDS else outputs.location(loc))
                                   for fld, loc in wires.items()}}
                if section == "tokenize_labeled" and LABELED_TOKENIZE:
                    item.setdefault("labeled", True)
                if section == "tune" and data.get("evaluate") is not None:
                    item.setdefault("evaluate", False)  # the build's evaluate step does it, as a stage of its own
                wired.append(item)
            data[section] = wired if isinstance(value, list | tuple) else wired[0]
        return data

    @model_validator(mode="after")
    def _check(self) -> "BuildConfig":
        if not self.sources:
            raise ValueError("sources: name at least one archive to ingest")
        names = [s.dataset_name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"sources: two sources with the dataset name {dup[0]!r}; give each its own `dataset`")
        ds = [d.dataset for d in self.datasets]
        dup = sorted({n for n in ds if ds.count(n) > 1})
        if dup:
            raise ValueError(f"datasets: {dup[0]!r} is listed twice")
        if self.tokenize_labeled is not None and not self.datasets:
            raise ValueError("tokenize_labeled: the build ingests no labeled dataset (add `datasets`)")
        if self.tune is not None and self.tokenize_labeled is None:
            raise ValueError("tune: the build makes no labeled corpus (add `tokenize_labeled`)")
        if self.evaluate is not None and self.tune is None:
            raise ValueError("evaluate: the build tunes no model (add `tune`)")
        return self

    _notes: tuple[str, ...] = PrivateAttr(default=())  # what the loader left out, and why

    def location(self, name: str) -> str:
        return self.outputs.location(name)

    @property
    def notes(self) -> tuple[str, ...]:
        return self._notes


# ----------------------------------------------------------------------------------- loading


def _absolute(value: Any) -> Any:
    if isinstance(value, str) and value and "://" not in value and not os.path.isabs(value) and (
            os.sep in value or value.startswith(".") or os.path.exists(value)):
        return os.path.abspath(value)
    return value


def _absolute_paths(doc: dict) -> dict:
    """Relative local paths of outputs, synth folders and params' path fields made absolute (from the cwd)."""
    doc = dict(doc)
    if isinstance(doc.get("outputs"), dict):
        doc["outputs"] = {k: (os.path.abspath(v) if isinstance(v, str) and "://" not in v else v)
                          for k, v in doc["outputs"].items()}
    synth = doc.get("synth")
    if isinstance(synth, dict):
        synth = dict(synth)
        if isinstance(synth.get("corpus"), dict) and isinstance(synth["corpus"].get("out"), str):
            synth["corpus"] = {**synth["corpus"], "out": os.path.abspath(synth["corpus"]["out"])}
        if isinstance(synth.get("datasets"), dict):
            synth["datasets"] = {k: os.path.abspath(v) if isinstance(v, str) else v
                                 for k, v in synth["datasets"].items()}
        doc["synth"] = synth
    for section in ("sources", "datasets", "train_tokenizer", "tokenize", "tokenize_labeled", "pretrain", "tune",
                    "evaluate"):
        value = doc.get(section)
        items = value if isinstance(value, list) else [value]
        fixed = [{k: (_absolute(v) if k in PATH_FIELDS else v) for k, v in it.items()} if isinstance(it, dict) else it
                 for it in items]
        if value is not None:
            doc[section] = fixed if isinstance(value, list) else fixed[0]
    return doc


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The YAML line (1-based) of the deepest node on ``loc`` (a pydantic error location)."""
    line = None  # a top-level field that is missing has no line
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if nxt is None:
                key = next((k for k, _ in node.value if getattr(k, "value", None) == str(part)), None)
                return key.start_mark.line + 1 if key is not None else line  # a missing field: its parent's
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _errors(exc: ValidationError, node: yaml.Node | None, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-")))
        # drop pydantic's union/tag markers (e.g. "TokenizeParams") so the path is the YAML's
        loc = tuple(p for p in loc if not (isinstance(p, str) and p[:1].isupper()))
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        line = _line_of(node, loc)
        field = ".".join(str(p) for p in loc)
        lines.append(f"{where}{f' line {line}' if line else ''}: {field + ': ' if field else ''}{msg}")
    return "\n".join(lines)


def parse_config(text: str, where: str = "<config>") -> BuildConfig:
    """A validated :class:`BuildConfig` from YAML text; ConfigError with line and field for each problem."""
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping with outputs, sources, train_tokenizer, tokenize, pretrain")
    wired = []
    for section, wires in WIRED.items():
        value = doc.get(section)
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            for fld in wires:
                if isinstance(item, dict) and fld in item:
                    loc = (section, fld) if i is None else (section, i, fld)
                    wired.append(f"{where} line {_line_of(node, loc)}: {'.'.join(map(str, loc))}: set by the build "
                                 f"(outputs.{wires[fld]}); remove it")
    if wired:
        raise ConfigError("\n".join(wired))
    notes = []
    if doc.get("tokenize_labeled") is not None and not LABELED_TOKENIZE:
        doc = {k: v for k, v in doc.items() if k != "tokenize_labeled"}
        notes.append("tokenize-labeled: left out: this checkout's tokenize stage has no `labeled` option yet")
    try:
        config = BuildConfig.model_validate(_absolute_paths(doc))
    except ValidationError as exc:
        raise ConfigError(_errors(exc, node, where)) from None
    config._notes = tuple(notes)
    return config


def load_config(path: str) -> BuildConfig:
    """Read and validate the build config at ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read build config {path}: {exc.strerror or exc}") from None
    return parse_config(text, path)


class BuildParams(BaseModel):
    """One build run (the build flow's form in the Prefect UI, and ``neurolm build``'s arguments)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    config: str = Field(description="the build config YAML (e.g. configs/demo.yaml); relative paths in it are taken "
                                    "from the working directory")
    force: tuple[str, ...] = Field((), description="steps or stages to run even when up to date "
                                                   "(e.g. pretrain, 'ingest tueg')")
    dry_run: bool = Field(False, description="only print the plan: which steps would run and why")
