"""The ordered stage list names real objects, and each stage has the one shape."""

from __future__ import annotations

import inspect
import typing

from pydantic import BaseModel

from neurolm import outputs
from neurolm.stages import MAINTENANCE, STAGES, stage


def test_every_stage_resolves_to_params_run_and_a_flow_taking_those_params():
    from prefect import Flow

    for s in STAGES + MAINTENANCE:
        params, run, fl = s.resolve("params"), s.resolve("run"), s.resolve("flow")
        assert issubclass(params, BaseModel) and params.model_config.get("frozen"), s.name
        undescribed = [k for k, f in params.model_fields.items() if not f.description]
        assert not undescribed, f"{s.name}: UI form fields without a description: {undescribed}"
        assert isinstance(fl, Flow), s.name
        hints = typing.get_type_hints(fl.fn)
        assert params in hints.values(), f"{s.name}: the flow does not take {params.__name__}"
        first = next(iter(inspect.signature(run).parameters.values()))
        assert typing.get_type_hints(run)[first.name] is params, f"{s.name}: run does not take its params first"


def test_stages_take_only_outputs_of_earlier_stages():
    given: set[str] = set()
    for s in STAGES:
        assert set(s.inputs) <= given, f"{s.name} takes {set(s.inputs) - given} before any stage gives it"
        given |= set(s.outputs)
    assert stage("tokenize").outputs == tuple(outputs.corpus_outputs("u", "v"))
    assert stage("ingest").outputs == tuple(outputs.store_outputs("u", "v"))
    assert stage("train-tokenizer").outputs == tuple(outputs.checkpoint_outputs("c", "s", "h"))
