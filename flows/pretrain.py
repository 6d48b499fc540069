"""The pretraining flow: Prefect wiring around :func:`neurolm.lm.run.pretrain`.

The library checks the inputs, keys the run folder, resumes, trains and writes the report; this
flow adds a progress artifact (steps, tokens/s, ETA), the run report as a markdown artifact (the
loss/accuracy curves embedded as a data: URI, so the UI shows them) and progress events for the CLI.

Why one task: a training run is one long stateful computation (and under ``torchrun`` each rank
runs this flow's function itself); Prefect's value here is observability, not fan-out. Why no
result caching: the run folder is the cache — a finished run with the same inputs does nothing,
an interrupted one continues from its last good checkpoint whatever Prefect's state says.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.lm_stage import progress_events, report_and_done, run_checked
from flows.runtime import RunEvents, run_name
from neurolm.lm.params import PretrainParams
from neurolm.lm.run import prepare, pretrain

_events = RunEvents()  # progress for the CLI, in this process
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)


@task(name="pretrain", cache_policy=NO_CACHE, retries=0)
def pretrain_task(params: PretrainParams) -> dict:
    """The whole training run in one task; returns the library's summary."""
    logger = get_run_logger()
    return pretrain(params, log=logger.info, emit=progress_events("neurolm-pretrain-progress", _emit))


@flow(name="neurolm-pretrain", flow_run_name=run_name("pretrain", "config", "input_mode"))
def pretrain_flow(params: PretrainParams) -> dict:
    """Pretrain (or resume, or find finished) NeuroLM on a token corpus; returns the run summary."""
    summary = pretrain_task(params)  # the library checks every input before any work
    return report_and_done(summary, "neurolm-pretrain-report", "pretraining run", _emit)


def run_pretrain(params: PretrainParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check inputs, then run :func:`pretrain_flow` against the shared Prefect server."""
    return run_checked("pretrain", prepare, pretrain_flow, _events, params, on_event)
