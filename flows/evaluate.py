"""The evaluation flow: Prefect wiring around :func:`neurolm.instruct.evaluate.evaluate`.

The library checks the inputs, evaluates every model folder and writes JSON, the RESULTS table,
the paper-shaped tables and the figures; this flow adds the report (tables + figures embedded as
data: URIs, so the Prefect UI shows them), the per-task bar chart and each confusion matrix as
markdown artifacts, and progress events for the CLI. One task: evaluation is a short stateful
computation on one device; Prefect's value here is observability.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.runtime import RunEvents, cli_run, run_name
from neurolm.instruct.eval_params import EvaluateParams
from neurolm.instruct.evaluate import evaluate, prepare

_events = RunEvents()
_emit = _events.emit  # a RunEvents pickles empty: safe to reach from flow code


def _key(name: str) -> str:
    return "neurolm-eval-" + re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")


@task(name="evaluate", cache_policy=NO_CACHE, retries=0)
def evaluate_task(params: EvaluateParams) -> dict:
    """Every model folder on every task and split; returns the library's summary."""
    return evaluate(params, log=get_run_logger().info, emit=_emit)


@flow(name="neurolm-evaluate", flow_run_name=run_name("evaluate", "corpus", "metrics"))
def evaluate_flow(params: EvaluateParams) -> dict:
    """Evaluate tuned models on a labeled corpus (option scoring, generation, tables, figures)."""
    summary = evaluate_task(params)
    files = summary["files"]
    with open(files["report"], encoding="utf-8") as f:
        create_markdown_artifact(f.read(), key="neurolm-eval-report",
                                 description=f"evaluation on corpus {summary['corpus_version']}")
    for name, fig in files["figures"].items():
        create_markdown_artifact(f"![{name}]({fig['data_uri']})", key=_key(name), description=name)
    _emit({"event": "done", "summary": summary})
    return summary


def run_evaluate(params: EvaluateParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check inputs, then run :func:`evaluate_flow` against the shared Prefect server."""
    prepare(params)  # input errors as one line, before a server starts
    with _events.listening(on_event):
        with cli_run("evaluate"):
            return evaluate_flow(params)
