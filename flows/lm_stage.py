"""What the two LM-stage flows (``flows/pretrain.py``, ``flows/tune.py``) add to their library call the same way:
a progress artifact fed by the run's events, the run report as a markdown artifact, and the CLI entry
(inputs checked before a server starts).

Call these inside a task or flow (they reach Prefect's run context); nothing here holds a listener,
so the flows still pickle without the CLI's progress bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from flows.runtime import RunEvents, cli_run

PROGRESS_EVERY_S = 2.0  # progress artifact updates at most this often (each one is an API call)


def describe(ev: dict) -> str:
    """'step 12/40 · 3,100 tokens/s · ETA 1 min 5 s · loss 4.210' (a step event)."""
    eta = ev.get("eta_s") or 0.0
    return (f"step {ev['step']}/{ev['total']} · {ev.get('tokens_per_s', 0):,.0f} tokens/s · "
            f"ETA {int(eta // 60)} min {int(eta % 60)} s · loss {ev.get('loss', float('nan')):.3f}")


def progress_events(key: str, forward: Callable[[dict], None]) -> Callable[[dict], None]:
    """An ``emit`` for the library: the ``plan`` event creates the progress artifact ``key``, ``step`` events
    update it (at most every :data:`PROGRESS_EVERY_S`, and at the last step); every event goes on to ``forward``."""
    state: dict = {"last": 0.0}

    def on_event(ev: dict) -> None:
        if ev["event"] == "plan":
            pct = 100.0 * ev["start"] / max(1, ev["total"])
            state["id"] = create_progress_artifact(pct, key=key,
                                                   description=f"run {ev['run_key']}: step {ev['start']}/{ev['total']}")
        elif ev["event"] == "step" and "id" in state:
            now = time.monotonic()
            if now - state["last"] >= PROGRESS_EVERY_S or ev["step"] == ev["total"]:
                state["last"] = now
                update_progress_artifact(state["id"], 100.0 * ev["step"] / ev["total"], description=describe(ev))
        forward(ev)

    return on_event


def report_and_done(summary: dict, key: str, what: str, forward: Callable[[dict], None]) -> dict:
    """The run's ``report.md`` as markdown artifact ``key`` ("<what> <run key>") unless nothing was done now;
    then the ``done`` event to ``forward``; → ``summary``."""
    report = summary.get("files", {}).get("report")
    if report and not summary.get("nothing_to_do"):
        with open(report, encoding="utf-8") as f:
            create_markdown_artifact(f.read(), key=key, description=f"{what} {summary['run_key']}")
    forward({"event": "done", "summary": summary})
    return summary


def run_checked(stage: str, prepare: Callable[[Any], Any], stage_flow: Callable[[Any], dict], events: RunEvents,
                params: Any, on_event: Callable[[dict], None] | None) -> dict:
    """``prepare(params)`` (input errors as one line, before a server starts), then ``stage_flow(params)``
    against the shared Prefect server with ``on_event`` listening to ``events``."""
    prepare(params)
    with events.listening(on_event):
        with cli_run(stage):
            return stage_flow(params)


def run_with_bar(run: Callable[..., dict], params: Any, desc: str, plan_line: Callable[[dict], str],
                 val_line: Callable[[dict, dict], str], quiet: bool = False) -> dict:
    """The CLI's view of a run: ``run(params, on_event=...)`` (a ``run_<stage>`` above) with, on stderr, the
    ``plan_line`` of the plan event, a tqdm bar of the steps (loss, tokens/s) and ``val_line(val event,
    plan event)`` at each validation; nothing with ``quiet`` (``--json``). → the run's summary."""
    from tqdm import tqdm

    state: dict = {"bar": None}

    def on_event(ev: dict) -> None:
        if quiet:
            return
        if ev["event"] == "plan":
            print(plan_line(ev), file=sys.stderr)
            state["plan"] = ev
            state["bar"] = tqdm(total=ev["total"], initial=ev["start"], desc=desc, unit="step", file=sys.stderr)
        elif ev["event"] == "step" and state["bar"] is not None:
            bar = state["bar"]
            bar.n = ev["step"]
            bar.set_postfix(loss=f"{ev['loss']:.3f}", tok_s=f"{ev['tokens_per_s']:.0f}", refresh=False)
            bar.refresh()
        elif ev["event"] == "val" and state["bar"] is not None:
            state["bar"].write(val_line(ev, state["plan"]))

    try:
        return run(params, on_event=on_event)
    finally:
        if state["bar"] is not None:
            state["bar"].close()
