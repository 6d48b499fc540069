"""The tokenizer-training flow: a thin Prefect wrapper around :mod:`neurolm.tokenizer.train`.

prepare (configs, store windows, output dir: errors before any work) → one
coarse training task (a progress artifact updated at every log line) → report:
a metrics table artifact, a markdown artifact with the loss curve's location,
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
from pydantic import BaseModel, ConfigDict

from flows.runtime import RunEvents
from neurolm.tokenizer.run import PreparedRun, metrics_markdown, prepare_run, write_report
from neurolm.tokenizer.train import train
from storage.checkpoints import checkpoint_sha256

_events = RunEvents()  # progress for the CLI, in this process


def _emit(event: dict) -> None:
    """Send ``event`` to this process's listeners.

    A module-level function, not ``_events.emit``: Prefect ships the running flow's function to Dask
    by value with every task, and cloudpickle copies the globals it uses. A function is sent by
    reference; a bound method would send the RunEvents with its listeners (the CLI's tqdm bar).
    """
    _events.emit(event)


class TrainTokenizerParams(BaseModel):
    """Everything a tokenizer training run is parameterised by (JSON-able, shown in the Prefect UI)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str
    out: str
    config: str = "tiny"  # preset name or YAML path
    steps: int | None = None
    batch_size: int | None = None
    device: str = "cpu"
    resume: bool = True
    split: str = "train"
    version: str | None = None
    num_workers: int | None = None
    seed: int | None = None
    text_tokens: str | None = None  # nanoGPT-style uint16 token file for the text side

    def prepare(self) -> PreparedRun:
        return prepare_run(self.store, self.out, self.config, steps=self.steps, batch_size=self.batch_size,
                           device=self.device, resume=self.resume, split=self.split, version=self.version,
                           num_workers=self.num_workers, seed=self.seed)


@task(name="train-tokenizer", cache_policy=NO_CACHE, retries=0)
def train_task(params: TrainTokenizerParams) -> dict:
    """The whole training run in one task; returns its history and checkpoint location."""
    logger = get_run_logger()
    run = params.prepare()
    progress = create_progress_artifact(0.0, key="neurolm-tokenizer-progress",
                                        description=f"tokenizer {run.cfg.name} → {run.out}")

    def on_log(line: dict) -> None:
        logger.info("step %d: %s", line["step"], {k: round(v, 4) for k, v in line.items()
                                                   if isinstance(v, float)})
        update_progress_artifact(progress, 100.0 * line["step"] / run.tcfg.steps)
        _emit({"event": "log", **line})

    res = train(run.cfg, run.tcfg, run.dataset, run.out, device=run.device, resume=params.resume,
                lineage=run.lineage, text_token_file=params.text_tokens, on_log=on_log,
                on_step=lambda s, n: _emit({"event": "step", "step": s, "total": n}))
    update_progress_artifact(progress, 100.0)
    return {"history": res.history, "steps": res.steps, "seconds": res.seconds, "patches": res.patches,
            "checkpoint": res.checkpoint, "lineage": run.lineage, "config_hash": run.cfg.config_hash(),
            "config": run.cfg.name}


@flow(name="neurolm-train-tokenizer")
def train_tokenizer_flow(params: TrainTokenizerParams) -> dict:
    """Train (or resume) the VQ tokenizer; returns a summary dict."""
    params.prepare()  # fail before scheduling anything
    out = train_task(params)
    png, md = write_report(out["history"], params.out)
    sha = checkpoint_sha256(params.out)
    if out["history"]:
        create_table_artifact(out["history"], key="neurolm-tokenizer-metrics", description="training metrics")
    lineage = "\n".join(f"- **{k}**: `{v}`" for k, v in out["lineage"].items())
    create_markdown_artifact(
        f"# Tokenizer `{out['config']}` ({out['config_hash']})\n\n"
        f"- checkpoint: `{out['checkpoint'] or params.out}`\n- weights sha256: `{sha}`\n"
        f"- loss curve: `{png}`\n- steps: {out['steps']}, {out['patches'] / max(out['seconds'], 1e-9):.0f} patches/s\n"
        f"{lineage}\n\n## Metrics\n\n{md or metrics_markdown(out['history'])}",
        key="neurolm-tokenizer-report", description="tokenizer training report")
    summary = {k: out[k] for k in ("steps", "seconds", "patches", "checkpoint", "config_hash", "config")}
    summary.update(weights_sha256=sha, loss_curve=png, out=params.out,
                   final=out["history"][-1] if out["history"] else {})
    _emit({"event": "done", "summary": summary})
    return summary


def run_train_tokenizer(params: TrainTokenizerParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check inputs, then run :func:`train_tokenizer_flow` against the shared Prefect server."""
    from flows.runtime import prefect_server

    params.prepare()  # errors before a server starts
    with _events.listening(on_event):
        with prefect_server():
            return train_tokenizer_flow(params)
