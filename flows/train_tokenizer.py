"""The tokenizer-training flow: a thin Prefect wrapper around :func:`neurolm.tokenizer.run.train_tokenizer`.

The run is prepared once: by :func:`run_train_tokenizer` (what the CLI calls)
before a Prefect server starts, so bad inputs fail fast, and handed to the flow
body; a flow started otherwise (deployment, UI) prepares it itself. Then one
coarse training task (a progress artifact updated at every log line) → report:
a metrics table artifact (rounded), a markdown artifact with the loss curve embedded (a data: URI),
the lineage and the checkpoint's sha256.

Why one task: a training run is one long stateful computation; Prefect's value
here is observability and lineage, not fan-out. Why no result caching: the
checkpoint directory is the cache. A killed run resumes from its last good
checkpoint and continues the same trajectory, whatever Prefect's state says.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)
from prefect.cache_policies import NO_CACHE

from flows.runtime import cli_run, rounded_rows, run_name, PreparedRuns, RunEvents
from neurolm.ingest.report import image_markdown
from neurolm.tokenizer.params import TrainTokenizerParams
from neurolm.tokenizer.run import REPORT_COLS, PreparedRun, metrics_markdown, prepare, train_tokenizer

_events = RunEvents()  # progress for the CLI, in this process
_runs = PreparedRuns()  # the run prepared by run_train_tokenizer, for the flow body
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty (listeners stay here)


def _prepared(params: TrainTokenizerParams) -> PreparedRun:
    """The run run_train_tokenizer prepared for ``params`` in this process, else prepared now."""
    return _runs.take(params, prepare)


@task(name="train-tokenizer", cache_policy=NO_CACHE, retries=0)
def train_task(params: TrainTokenizerParams, run: PreparedRun) -> dict:
    """The whole training run in one task; returns the library's summary."""
    logger = get_run_logger()
    progress = create_progress_artifact(0.0, key="neurolm-tokenizer-progress",
                                        description=f"tokenizer {run.cfg.name} → {run.out}")

    def on_event(event: dict) -> None:
        if event["event"] == "log":
            update_progress_artifact(progress, 100.0 * event["step"] / run.tcfg.steps)
        _emit(event)

    summary = train_tokenizer(params, run, log=logger.info, emit=on_event)
    update_progress_artifact(progress, 100.0)
    return summary


@flow(name="neurolm-train-tokenizer", flow_run_name=run_name("train-tokenizer", "config", "out"))
def train_tokenizer_flow(params: TrainTokenizerParams) -> dict:
    """Train (or resume) the VQ tokenizer; returns a summary dict (``outputs``: checkpoint, sha256, config hash)."""
    summary = train_task(params, _prepared(params))
    history = summary.pop("history")
    lineage = summary.pop("lineage")
    md = summary.pop("metrics_markdown")
    if history:
        create_table_artifact(rounded_rows(history, REPORT_COLS), key="neurolm-tokenizer-metrics",
                              description="training metrics")
    lines = "\n".join(f"- **{k}**: `{v}`" for k, v in lineage.items())
    curve = image_markdown(summary["loss_curve"], "loss curve") if summary["loss_curve"] else ""  # shown in the UI
    create_markdown_artifact(
        f"# Tokenizer `{summary['config']}` ({summary['config_hash']})\n\n"
        f"- checkpoint: `{summary['checkpoint'] or summary['out']}`\n- weights sha256: `{summary['weights_sha256']}`\n"
        f"- loss curve: `{summary['loss_curve']}`\n\n{curve}\n\n"
        f"- steps: {summary['steps']}, {summary['patches'] / max(summary['seconds'], 1e-9):.0f} patches/s\n"
        f"{lines}\n\n## Metrics\n\n{md or metrics_markdown(history)}",
        key="neurolm-tokenizer-report", description="tokenizer training report")
    _emit({"event": "done", "summary": summary})
    return summary


def run_train_tokenizer(params: TrainTokenizerParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Prepare the run (bad inputs fail here, before a server starts), then run :func:`train_tokenizer_flow`
    against the shared Prefect server on that prepared run."""
    run = prepare(params)
    with _events.listening(on_event), _runs.holding(params, run):
        with cli_run("train-tokenizer"):
            return train_tokenizer_flow(params)
