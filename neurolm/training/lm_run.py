"""The run folder and loop of an LM stage: what pretraining (:mod:`neurolm.lm.run`) and instruction
tuning (:mod:`neurolm.instruct.run`) do the same way.

A stage keeps its inputs, model, batches, loss, validation, baseline and report; it calls these in
its own visible sequence::

    run = PreparedPretrain(...)                   # a PreparedRun: run folder, configs, text, processes
    done = finished(run, log)                     # summary.json there: the run is finished, do nothing
    device = start_process(run)                   # device (params.device), process group, seed
    ... the stage builds its model, optimizer (scaler = grad_scaler(device, tcfg.amp)) and batches
    res = resume(run, model, opt, scaler, device, check, log)
    text_b = write_run_files(run)                 # lineage.json, bundled text; → text batches
    ... the stage's plan event and log line
    hooks = LoopHooks(step=..., tokens=..., validate=..., val_line=...,
                      save=lambda step, h, vh: save(run, model, checkpoint_state(KIND, run, step, opt, ...)))
    loop = train_loop(hooks, run, train_b, text_b, res, log, emit)   # neurolm.training.lm_loop
    publish(run, summary, png, report_markdown, outputs, loop.last_ckpt)   # curves, report, summary.json

Run folder ``OUT/run-<key>/``: ``checkpoints/`` (storage.checkpoints), ``model/`` (rewritten at every
checkpoint, swapped in whole), ``lineage.json``, ``text/bundled.bin`` (only when no text file was
given), ``curves.png``, ``report.md``, and ``summary.json`` last: the run is finished.

A checkpoint holds everything that continues the run exactly (:func:`checkpoint_state`); with the
loop's batches a pure function of (seed, step) (:mod:`.lm_loop`), a resumed run (also after
``kill -9``) continues the same trajectory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from neurolm.errors import ConfigError, StoreError
from neurolm.lm.config import LMConfig, LMTrainConfig
from neurolm.lm.io import FORMAT, lm_metadata, save_lm
from neurolm.lm.text import TextBatches, write_token_bin
from neurolm.training.device import resolve_device
from neurolm.training.distributed import DistEnv, barrier, init_distributed
from neurolm.training.rng import rng_state, set_rng_state
from storage import checkpoints as ckpts
from storage.checkpoints import Checkpoint

Log = Callable[[str], None]


def quiet(*_a, **_k) -> None:
    return None


def canonical_hash(doc: Any) -> str:
    """sha256 of ``doc`` as canonical JSON (sorted keys, no spaces): the run key's source."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def steps_per_epoch(n_train: int, tcfg: LMTrainConfig, env: DistEnv) -> int:
    """Optimiser steps in one pass over ``n_train`` samples; ConfigError when not even one step fits."""
    per_step = tcfg.batch_size * tcfg.grad_accum * env.world
    spe = n_train // per_step
    if spe < 1:
        raise ConfigError(f"the train split has {n_train} samples, fewer than one step takes "
                          f"({tcfg.batch_size} x {tcfg.grad_accum} micro-batches x {env.world} processes)")
    return spe


@dataclass(kw_only=True)
class PreparedRun:
    """What every LM stage has checked and resolved before training (a stage's ``Prepared*`` adds its data).

    ``params`` must have ``device``, ``ckpt_every`` and ``keep_last``; ``text`` is a
    :class:`neurolm.lm.run.TextSource` (``path`` of a token file, or the bundled ``ids``).
    """

    params: Any
    cfg: LMConfig
    tcfg: LMTrainConfig  # resolved: steps and warm-up steps are set
    text: Any
    env: DistEnv
    steps_per_epoch: int
    run_key: str
    run_dir: str
    lineage: dict[str, Any] = field(default_factory=dict)
    signals: Any = None

    @property
    def ckpt_dir(self) -> str:
        return os.path.join(self.run_dir, "checkpoints")

    @property
    def model_dir(self) -> str:
        return os.path.join(self.run_dir, "model")


# -- start ----------------------------------------------------------------------------------------
def finished(run: PreparedRun, log: Log) -> dict[str, Any] | None:
    """The summary of a finished run (marked as nothing done now), or None when the run is not finished."""
    done_file = os.path.join(run.run_dir, "summary.json")
    if not os.path.exists(done_file):
        return None
    with open(done_file, encoding="utf-8") as f:
        summary = json.load(f)
    log(f"run {run.run_key} is finished ({summary['steps']} steps): nothing to do")
    return {**summary, "nothing_to_do": True, "steps_done_now": 0, "wall_s": 0.0}


def start_process(run: PreparedRun) -> torch.device:
    """This rank's device, the process group when ``world`` > 1, and the seed of the model's initialisation."""
    device = resolve_device(run.params.device, run.env.local_rank)
    init_distributed(run.env, device)
    torch.manual_seed(run.tcfg.seed)
    return device


# -- checkpoints ----------------------------------------------------------------------------------
def check_checkpoint(ckpt: Checkpoint, run: PreparedRun, kind: str, what: str) -> None:
    """ConfigError when a checkpoint in the run folder is not this run's (another stage's, a foreign or renamed one)."""
    config_hash, run_key = run.cfg.config_hash(), run.run_key
    st = ckpt.state
    if not isinstance(st, dict) or st.get("kind") != kind:
        raise ConfigError(f"{ckpt.path} is not a neurolm {what} checkpoint (state kind "
                          f"{st.get('kind') if isinstance(st, dict) else None!r})")
    if ckpt.metadata.get("format") != FORMAT or ckpt.metadata.get("config_hash") != config_hash:
        raise ConfigError(f"{ckpt.path} holds weights of model config {ckpt.metadata.get('config_hash')}, "
                          f"this run's is {config_hash}")
    if ckpt.lineage.get("run_key") != run_key:
        raise ConfigError(f"{ckpt.path} belongs to run {ckpt.lineage.get('run_key')}, not {run_key}: "
                          "it was copied from another run; move it away")


@dataclass
class Resumed:
    """Where the loop starts: step, the histories so far, and the checkpoint they came from (None: fresh)."""

    start: int = 0
    history: list[dict] = field(default_factory=list)
    val_history: list[dict] = field(default_factory=list)
    ckpt: Checkpoint | None = None


def resume(run: PreparedRun, model: torch.nn.Module, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
           device: torch.device, check: Callable[[Checkpoint], None], log: Log) -> Resumed:
    """Create the run folder; restore weights, optimizer, scaler and RNGs from its newest good checkpoint.

    StoreError when every checkpoint is corrupt; ConfigError when ``check`` refuses the checkpoint or
    it does not fit the model/optimizer.
    """
    os.makedirs(run.run_dir, exist_ok=True)
    ckpt = ckpts.load_latest_good(run.ckpt_dir)
    if ckpt is None:
        return Resumed()
    check(ckpt)
    try:
        model.load_state_dict({k: v.to(device) for k, v in ckpt.weights.items()}, strict=True)
        opt.load_state_dict(ckpt.state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ConfigError(f"{ckpt.path} does not fit this model/optimizer: {exc}") from exc
    if scaler is not None and ckpt.state.get("scaler"):
        scaler.load_state_dict(ckpt.state["scaler"])
    set_rng_state(ckpt.state["rng"])
    start = int(ckpt.state["step"])
    history, val_history = list(ckpt.state["history"]), list(ckpt.state["val_history"])
    log(f"resuming run {run.run_key} at step {start} of {run.tcfg.steps} from {ckpt.path}")
    return Resumed(start, history, val_history, ckpt)


def checkpoint_state(kind: str, run: PreparedRun, step: int, opt: torch.optim.Optimizer,
                     scaler: torch.amp.GradScaler | None, history: list, val_history: list, **extra) -> dict[str, Any]:
    """Everything besides the weights that continues the run exactly (``extra``: the stage's own, e.g. baseline)."""
    return {"kind": kind, "step": step, "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "rng": rng_state(),
            "sampler": {"micro_batch": step * run.tcfg.grad_accum * run.env.world, "seed": run.tcfg.seed},
            "history": history, "val_history": val_history, **extra}


def save(run: PreparedRun, model: torch.nn.Module, state: dict[str, Any],
         model_json: dict[str, dict] | None = None) -> str:
    """Rank 0: a checkpoint of ``model`` with ``state`` (keeping ``keep_last``), then the ``model/`` folder
    (+ ``model_json`` files); → the checkpoint's path."""
    path = ckpts.save_checkpoint(run.ckpt_dir, dict(model.state_dict()), state, run.lineage,
                                 keep_last=run.params.keep_last, metadata=lm_metadata(run.cfg))
    write_model(model, run.model_dir, model_json)
    return path


def write_model(model: torch.nn.Module, directory: str, extra_json: dict[str, dict] | None = None) -> None:
    """save_lm (+ ``extra_json``: file name → JSON document) into a fresh folder, then swap it in
    (a kill leaves the previous model intact)."""
    tmp, old = directory + ".tmp", directory + ".old"
    shutil.rmtree(tmp, ignore_errors=True)
    save_lm(model, tmp)
    for name, doc in (extra_json or {}).items():
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    if os.path.exists(directory):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def load_history(run_dir: str) -> tuple[list[dict], list[dict]]:
    """(per-step history, validation history) of the newest good checkpoint of a run folder."""
    ck = ckpts.load_latest_good(os.path.join(run_dir, "checkpoints"))
    if ck is None:
        raise StoreError(f"{run_dir} holds no checkpoint")
    return list(ck.state["history"]), list(ck.state["val_history"])


# -- run files ------------------------------------------------------------------------------------
def write_run_files(run: PreparedRun) -> TextBatches | None:
    """Rank 0 writes ``lineage.json`` and, without a text file, the bundled text; → the text LM batches (or None)."""
    text, tcfg, env = run.text, run.tcfg, run.env
    bundled = os.path.join(run.run_dir, "text", "bundled.bin")
    if env.is_main:
        with open(os.path.join(run.run_dir, "lineage.json"), "w", encoding="utf-8") as f:
            json.dump(run.lineage, f, indent=1, default=str)
        if text.ids is not None:
            os.makedirs(os.path.dirname(bundled), exist_ok=True)
            write_token_bin(bundled, text.ids)
    barrier(env)
    path = text.path or (bundled if text.ids is not None else None)
    return TextBatches(path, tcfg.text_batch_size, tcfg.text_seq_len, seed=tcfg.seed) if path else None


# -- the end --------------------------------------------------------------------------------------
def tokens_per_s(tokens: int, loop_s: float) -> float | None:
    return round(tokens / loop_s, 1) if loop_s > 0 and tokens else None


def publish(run: PreparedRun, summary: dict[str, Any], png: bytes, report_markdown: Callable[[dict, bytes], str],
            outputs: dict[str, str], last_ckpt: str | None, extra_files: dict[str, str] | None = None) -> None:
    """Rank 0: ``curves.png``, ``summary["outputs"]`` and ``["files"]``, ``report.md``, then ``summary.json`` (last,
    atomically: the run is finished)."""
    run_dir = run.run_dir
    curves, report = os.path.join(run_dir, "curves.png"), os.path.join(run_dir, "report.md")
    with open(curves, "wb") as f:
        f.write(png)
    summary["outputs"] = outputs
    summary["files"] = {"checkpoint": last_ckpt, "curves": curves, "report": report,
                        "lineage": os.path.join(run_dir, "lineage.json"), **(extra_files or {})}
    with open(report, "w", encoding="utf-8") as f:
        f.write(report_markdown(summary, png))
    tmp = os.path.join(run_dir, f"summary.json.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=str)
    os.replace(tmp, os.path.join(run_dir, "summary.json"))
