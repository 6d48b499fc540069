"""The instruction-tuning flow: Prefect wiring around :func:`neurolm.instruct.run.tune`.

The library checks the inputs, keys the run folder, resumes, trains, evaluates (when the evaluation
module is installed) and writes the report; this flow adds a progress artifact (steps, tokens/s,
ETA), the run report as a markdown artifact (curves embedded as a data: URI) and progress events
for the CLI. One task, no result caching: as for pretraining, the run folder is the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from flows.runtime import RunEvents, cli_run, run_name
from neurolm.instruct.params import TuneParams
from neurolm.instruct.run import prepare, tune

_events = RunEvents()  # progress for the CLI, in this process
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)

PROGRESS_EVERY_S = 2.0  # progress artifact updates at most this often (each one is an API call)


def _describe(ev: dict) -> str:
    eta = ev.get("eta_s") or 0.0
    return (f"step {ev['step']}/{ev['total']} · {ev.get('tokens_per_s', 0):,.0f} tokens/s · "
            f"ETA {int(eta // 60)} min {int(eta % 60)} s · loss {ev.get('loss', float('nan')):.3f}")


@task(name="tune", cache_policy=NO_CACHE, retries=0)
def tune_task(params: TuneParams) -> dict:
    """The whole tuning run in one task; returns the library's summary."""
    logger = get_run_logger()
    state: dict = {"last": 0.0}

    def on_event(ev: dict) -> None:
        if ev["event"] == "plan":
            pct = 100.0 * ev["start"] / max(1, ev["total"])
            state["id"] = create_progress_artifact(pct, key="neurolm-tune-progress",
                                                   description=f"run {ev['run_key']}: step {ev['start']}/{ev['total']}")
        elif ev["event"] == "step" and "id" in state:
            now = time.monotonic()
            if now - state["last"] >= PROGRESS_EVERY_S or ev["step"] == ev["total"]:
                state["last"] = now
                update_progress_artifact(state["id"], 100.0 * ev["step"] / ev["total"], description=_describe(ev))
        _emit(ev)

    return tune(params, log=logger.info, emit=on_event)


@flow(name="neurolm-tune", flow_run_name=run_name("tune", "corpus", "positions"))
def tune_flow(params: TuneParams) -> dict:
    """Instruction-tune (or resume, or find finished) NeuroLM on a labeled corpus; returns the run summary."""
    summary = tune_task(params)  # the library checks every input before any work
    report = summary.get("files", {}).get("report")
    if report and not summary.get("nothing_to_do"):
        with open(report, encoding="utf-8") as f:
            create_markdown_artifact(f.read(), key="neurolm-tune-report",
                                     description=f"instruction-tuning run {summary['run_key']}")
    _emit({"event": "done", "summary": summary})
    return summary


def run_tune(params: TuneParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check inputs, then run :func:`tune_flow` against the shared Prefect server."""
    prepare(params)  # input errors as one line, before a server starts
    with _events.listening(on_event):
        with cli_run("tune"):
            return tune_flow(params)
