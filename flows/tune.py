"""The instruction-tuning flow: Prefect wiring around :func:`neurolm.instruct.run.tune`.

The library checks the inputs, keys the run folder, resumes, trains, evaluates (when the evaluation
module is installed) and writes the report; this flow adds a progress artifact (steps, tokens/s,
ETA), the run report as a markdown artifact (curves embedded as a data: URI) and progress events
for the CLI. One task, no result caching: as for pretraining, the run folder is the cache.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.lm_stage import progress_events, report_and_done, run_checked
from flows.runtime import RunEvents, run_name
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import prepare, tune

_events = RunEvents()  # progress for the CLI, in this process
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)


@task(name="tune", cache_policy=NO_CACHE, retries=0)
def tune_task(params: TuneParams) -> dict:
    """The whole tuning run in one task; returns the library's summary."""
    logger = get_run_logger()
    return tune(params, log=logger.info, emit=progress_events("neurolm-tune-progress", _emit))


@flow(name="neurolm-tune", flow_run_name=run_name("tune", "corpus", "positions"))
def tune_flow(params: TuneParams) -> dict:
    """Instruction-tune (or resume, or find finished) NeuroLM on a labeled corpus; returns the run summary."""
    summary = tune_task(params)  # the library checks every input before any work
    return report_and_done(summary, "neurolm-tune-report", "instruction-tuning run", _emit)


def run_tune(params: TuneParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check inputs, then run :func:`tune_flow` against the shared Prefect server."""
    return run_checked("tune", prepare, tune_flow, _events, params, on_event)
