"""The one ordered list of NeuroLM's stages, and the shape every stage has.

Every stage (like MNE-BIDS-Pipeline's steps) is:

- **params**: a typed, frozen pydantic model in the library (the Prefect UI form, the CLI's arguments,
  every field described);
- **run**: one library function ``run(params, [mapper,] *, log, emit, ...) -> summary``. It prepares the
  run once, holds its output's lock, does the work item by item through a :class:`neurolm.fanout.Mapper`
  where there is fan-out, commits each unit atomically (a rerun skips what is committed) and returns a
  summary whose ``outputs`` mapping (:mod:`neurolm.outputs`) the next stage takes as its inputs;
- **flow**: a thin Prefect flow in ``flows/`` that gives ``run`` the Dask mapper, the run logger, progress
  and report artifacts (and the CLI a ``run_*`` function);
- **cli**: ``neurolm <name>`` builds params and calls the flow's runner.

Held here as dotted paths, not imports: listing the stages must not import torch or Prefect.
``tests/test_stages.py`` checks that every path resolves and that each flow takes its params.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stage:
    """One stage: its command name, its params, its library run function, its flow, what it takes and gives."""

    name: str
    params: str  # "module:Class"
    run: str  # "module:function"
    flow: str  # "flows.module:flow"
    inputs: tuple[str, ...]  # `outputs` keys of earlier stages it consumes
    outputs: tuple[str, ...]  # keys of its summary's `outputs`

    def resolve(self, what: str) -> Any:
        """The object named by ``params``, ``run`` or ``flow`` (imports its module)."""
        module, _, attr = getattr(self, what).partition(":")
        return getattr(importlib.import_module(module), attr)


#: In order: each stage takes only outputs of the stages before it.
STAGES: tuple[Stage, ...] = (
    Stage("ingest", "neurolm.ingest.config:IngestParams", "neurolm.ingest.run:ingest",
          "flows.ingest:ingest_flow", (), ("store", "store_version")),
    Stage("ingest-dataset", "neurolm.datasets.ingest:DatasetIngestParams", "neurolm.datasets.ingest:ingest_dataset",
          "flows.ingest_dataset:ingest_dataset_flow", ("store",), ("store", "store_version")),
    Stage("train-tokenizer", "neurolm.tokenizer.params:TrainTokenizerParams", "neurolm.tokenizer.run:train_tokenizer",
          "flows.train_tokenizer:train_tokenizer_flow", ("store",),
          ("checkpoint", "checkpoint_sha256", "tokenizer_config_hash")),
    Stage("tokenize", "neurolm.corpus.params:TokenizeParams", "neurolm.corpus.run:tokenize_corpus",
          "flows.tokenize_corpus:tokenize_flow", ("store", "checkpoint"), ("corpus", "corpus_version")),
    Stage("pretrain", "neurolm.lm.params:PretrainParams", "neurolm.lm.run:pretrain", "flows.pretrain:pretrain_flow",
          ("corpus",), ("model", "model_config_hash", "pretrain_run")),
    Stage("tune", "neurolm.instruct.params:TuneParams", "neurolm.instruct.run:tune", "flows.tune:tune_flow",
          ("corpus", "model"), ("model", "model_config_hash", "tune_run")),
    Stage("evaluate", "neurolm.instruct.eval_params:EvaluateParams", "neurolm.instruct.evaluate:evaluate",
          "flows.evaluate:evaluate_flow", ("model", "corpus"), ("evaluation", "results")),
)

#: Maintenance commands with the same shape that are not links of the chain.
MAINTENANCE: tuple[Stage, ...] = (
    Stage("rebuild", "neurolm.ingest.rebuild:RebuildParams", "neurolm.ingest.rebuild:rebuild_store",
          "flows.rebuild:rebuild_flow", ("store",), ("store", "store_version")),
)


def stage(name: str) -> Stage:
    """The stage (or maintenance command) called ``name``."""
    for s in STAGES + MAINTENANCE:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}; stages: {', '.join(s.name for s in STAGES + MAINTENANCE)}")
