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

import time
from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from flows.runtime import RunEvents, cli_run, run_name
from neurolm.lm.params import PretrainParams
from neurolm.lm.run import pretrain, prepare

_events = RunEvents()  # progress for the CLI, in this process
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)

PROGRESS_EVERY_S = 2.0  # progress artifact updates at most this often (each one is an API call)


def _describe(ev: dict) -> str:
    eta = ev.get("eta_s") or 0.0
    return (f"step {ev['step']}/{ev['total']} · {ev.get('tokens_per_s', 0):,.0f} tokens/s · "
            f"ETA {int(eta // 60)} min {int(eta % 60)} s · loss {ev.get('loss', float('nan')):.3f}")


@task(name="pretrain", cache_policy=NO_CACHE, retries=0)
def pretrain_task(params: PretrainParams) -> dict:
    """The whole training run in one task; returns the library's summary."""
    logger = get_run_logger()
    state: dict = {"last": 0.0}

    def on_event(ev: dict) -> None:
        if ev["event"] == "plan":
            pct = 100.0 * ev["start"] / max(1, ev["total"])
            state["id"] = create_progress_artifact(pct, key="neurolm-pretrain-progress",
                                                   description=f"run {ev['run_key']}: step {ev['start']}/{ev['total']}")
        elif ev["event"] == "step" and "id" in state:
            now = time.monotonic()
            if now - state["last"] >= PROGRESS_EVERY_S or ev["step"] == ev["total"]:
                state["last"] = now
                update_progress_artifact(state["id"], 100.0 * ev["step"] / ev["total"], description=_describe(ev))
        _emit(ev)

    return pretrain(params, log=logger.info, emit=on_event)


@flow(name="neurolm-pretrain", flow_run_name=run_name("pretrain", "config", "input_mode"))
def pretrain_flow(params: PretrainParams) -> dict:
    """Pretrain (or resume, or find finished) NeuroLM on a token corpus; returns the run summary."""
    summary = pretrain_task(params)  # the library checks every input before any work
    report = summary.get("files", {}).get("report")
    if report and not summary.get("nothing_to_do"):
        with open(report, encoding="utf-8") as f:
            create_markdown_artifact(f.read(), key="neurolm-pretrain-report",
                                     description=f"pretraining run {summary['run_key']}")
    _emit({"event": "done", "summary": summary})
    return summary


def run_pretrain(params: PretrainParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check inputs, then run :func:`pretrain_flow` against the shared Prefect server."""
    prepare(params)  # input errors as one line, before a server starts
    with _events.listening(on_event):
        with cli_run("pretrain"):
            return pretrain_flow(params)
