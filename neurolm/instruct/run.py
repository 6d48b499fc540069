"""Instruction tuning as one library call: :func:`tune` (the Prefect flow ``flows/tune.py`` only wires it).

The shape of :func:`neurolm.lm.run.pretrain`, on the same LM-stage runtime (:mod:`neurolm.training.lm_run`):
check inputs (one clear error each, before any step) → run folder keyed by the inputs → resume from its
last good checkpoint, or do nothing when finished → the loop: every step an instruction batch (all
tasks mixed, :mod:`.data`) and a text LM batch, loss = instruction loss + text loss; validation at
every epoch end; checkpoints → evaluation hook → report → summary with ``outputs``.

Inputs and their lineage: the labeled corpus (``neurolm tokenize --labeled``) and a pretrained model
folder (``--init``, the pretrain stage's ``model``). Refused before work: a corpus without task/label
columns, an unknown task, labels outside a task's classes, a window longer than 276 tokens, a model
whose codebook size, tokenizer config or channel vocabulary differ from the corpus's, and — when the
model folder sits in a pretraining run folder (its ``lineage.json``) — a model pretrained with another
tokenizer checkpoint (sha256) or vocabulary version than the corpus was made with.

Run folder ``OUT/run-<key>/`` (``key`` = sha256 of the corpus version and content, the init model's
weights sha256, the resolved optimisation, position mode, temperature, text identity, processes)::

    checkpoints/ckpt-<step>/   weights + JSON training state (optimizer, RNGs, step, history), lineage
    model/                     save_lm layout, rewritten at every checkpoint: the tuned model; its
                               instruct.json names the text-position mode, padding, tasks and run
    lineage.json               where the run came from (also in every checkpoint)
    text/bundled.bin           only when no text file was given
    curves.png, report.md      at the end
    summary.json               written last: the run is finished; the same inputs again do nothing

The batch of a step is a pure function of (seed, step), so a resumed run (also after ``kill -9``)
continues the same trajectory: on CPU the per-step losses equal those of an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurolm.errors import ConfigError, StoreError
from neurolm.instruct.data import InstructBatches, LabeledSplit, open_labeled
from neurolm.instruct.params import TuneParams, resolve_steps
from neurolm.instruct.report import curves_png, report_markdown
from neurolm.instruct.sequence import EEG_MAX_LEN, TEXT_MAX_LEN, TaskTexts
from neurolm.instruct.train import InstructObjective, train_step, validate
from neurolm.lm.config import LMConfig
from neurolm.lm.data import SignalPatches, check_corpus, identity
from neurolm.lm.io import CONFIG_FILE, EXTRA_FILE, config_from_metadata, load_lm
from neurolm.lm.run import resolve_text
from neurolm.lm.text import load_gpt2_bpe
from neurolm.lm.train import make_optimizer
from neurolm.training import DistEnv, dist_env, wrap_ddp
from neurolm.training.lm_loop import LoopHooks, train_loop
from neurolm.training.lm_run import (PreparedRun, canonical_hash, check_checkpoint, checkpoint_state, finished,
                                     load_history, publish, quiet, resume, save, start_process, steps_per_epoch,
                                     tokens_per_s, write_run_files)
from neurolm.training.lm_run import write_model as _write_lm
from neurolm.training.lm_step import grad_scaler

__all__ = ["INSTRUCT_FILE", "PreparedTune", "instruct_info", "load_history", "majority_baseline", "prepare",
           "run_evaluation", "tune", "tune_outputs", "write_model"]

STATE_KIND = "neurolm-tune-v1"
_UNKNOWN = (None, "synthetic")


def tune_outputs(model_dir: str, config_hash: str, run_dir: str) -> dict[str, str]:
    """What the tune stage hands on: the tuned model folder (save_lm layout), its config hash, the run folder."""
    return {"model": model_dir, "model_config_hash": config_hash, "tune_run": run_dir}


# -- inputs ---------------------------------------------------------------------------------------
def init_config(init: str) -> tuple[LMConfig, str]:
    """(LMConfig, sha256 over its config and weight files) of a model folder, without loading the weights."""
    from safetensors import safe_open

    extra = os.path.join(init, EXTRA_FILE)
    if not (os.path.isfile(extra) and os.path.isfile(os.path.join(init, "config.json"))):
        raise StoreError(f"--init {init} is not a neurolm model folder (needs config.json and {EXTRA_FILE}; "
                         "give the pretrain stage's `model` output)")
    try:
        with safe_open(extra, framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise StoreError(f"{extra} is not a readable safetensors file: {exc}") from exc
    h = hashlib.sha256()
    for name in sorted(os.listdir(init)):  # the backbone may be sharded (model-0000k-of-0000n.safetensors)
        if name.endswith((".safetensors", ".json")):
            h.update(name.encode())
            with open(os.path.join(init, name), "rb") as f:
                for chunk in iter(lambda: f.read(1 << 22), b""):
                    h.update(chunk)
    return config_from_metadata(meta, extra), h.hexdigest()


def pretrain_lineage(init: str) -> dict[str, Any] | None:
    """The ``lineage.json`` of the pretraining run folder holding ``init`` (``RUN/model``), if any."""
    path = os.path.join(os.path.dirname(os.path.abspath(init.rstrip("/"))), "lineage.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_model_fits_corpus(cfg: LMConfig, corpus_lineage: dict, pre: dict | None) -> list[str]:
    """ConfigError when the model cannot read the corpus's codes; → notes on what could not be compared."""
    check_corpus(corpus_lineage, {"train", "val"}, cfg)  # codebook size, vocabulary version, tokenizer config
    ident, notes = identity(corpus_lineage), []
    if pre is None:
        return ["the model folder is not inside a pretraining run (no lineage.json beside it): its tokenizer "
                "checkpoint could not be compared with the corpus's, only the tokenizer config"]
    for key, what in (("tokenizer_sha256", "tokenizer checkpoint"), ("vocab_version", "channel vocabulary")):
        have, want = pre.get(key), ident.get(key)
        if have in _UNKNOWN or want in _UNKNOWN:
            notes.append(f"{what}: not recorded on both sides, not compared")
        elif have != want:
            raise ConfigError(f"the model was pretrained with {what} {str(have)[:16]}, the labeled corpus was made "
                              f"with {str(want)[:16]}: its codes would mean other things to the model")
    return notes


def check_windows(splits: dict[str, LabeledSplit], cfg: LMConfig, text_len: int, eeg_len: int = EEG_MAX_LEN) -> None:
    """ConfigError for a window longer than ``eeg_len`` (≤ 276) tokens or text positions beyond the table."""
    for s in splits.values():
        ntok = s.corpus.manifest["n_tokens"].to_numpy()[s.corpus.selected]
        if len(ntok) and int(ntok.max()) > eeg_len:
            i = int(np.argmax(ntok))
            row = s.row(i)
            raise ConfigError(f"{s.split} window {row['recording_id']}@{row['window_start']} holds {int(ntok[i])} "
                              f"EEG tokens, more than the {eeg_len} an instruction sequence holds; refused, "
                              "never truncated")
    if EEG_MAX_LEN + text_len > cfg.block_size:  # seconds ≤ tokens ≤ 276: only a shrunk table can overflow
        raise ConfigError(f"EEG of up to {EEG_MAX_LEN} seconds + {text_len} text tokens can exceed the model's "
                          f"position table ({cfg.block_size} rows)")


@dataclass(kw_only=True)
class PreparedTune(PreparedRun):
    """Everything checked and resolved before training: the shared run fields, the labeled splits, the task texts."""

    params: TuneParams
    train: LabeledSplit
    val: LabeledSplit
    texts: TaskTexts
    notes: list[str] = field(default_factory=list)

    def batches(self, split: str) -> InstructBatches:
        t, p = self.tcfg, self.params
        if split == "train":
            return InstructBatches(self.train, self.texts, t.batch_size, seed=t.seed, temperature=p.temperature,
                                   eeg_len=p.eeg_len, signals=self.signals)
        return InstructBatches(self.val, self.texts, t.batch_size, shuffle=False, drop_last=False, eeg_len=p.eeg_len,
                               signals=self.signals)


def prepare(params: TuneParams, env: DistEnv | None = None) -> PreparedTune:
    """Check every input and resolve the run folder; ConfigError/StoreError before any work."""
    env = env or dist_env()
    cfg, init_sha = init_config(params.init)
    splits = open_labeled(params.corpus, params.corpus_version)  # columns, tasks, labels; train and val
    train, val = splits["train"], splits["val"]
    lineage = train.corpus.lineage
    pre = pretrain_lineage(params.init)
    notes = check_model_fits_corpus(cfg, lineage, pre)
    tcfg = params.train_config(cfg.name)
    check_windows(splits, cfg, TEXT_MAX_LEN, params.eeg_len)
    texts = TaskTexts(load_gpt2_bpe(params.bpe))  # ConfigError: an answer that changes its prompt's tokens
    signals = SignalPatches(lineage, store_url=params.store) if cfg.input_mode == "features" else None
    text = resolve_text(params, tcfg, cfg.text_vocab)
    spe = steps_per_epoch(len(train), tcfg, env)
    tcfg = resolve_steps(tcfg, spe)
    corpus_id = {"corpus_version": train.corpus.version_id, "corpus_content": train.corpus.status.get("content_hash")}
    key_doc = {**corpus_id, "init_sha256": init_sha, "model_config_hash": cfg.config_hash(),
               "train_config": tcfg.model_dump(mode="json"), "positions": params.positions, "eeg_len": params.eeg_len,
               "temperature": params.temperature, "text": {k: v for k, v in text.identity.items() if k != "bpe"},
               "processes": env.world}
    run_key = canonical_hash(key_doc)[:12]
    run_dir = os.path.join(os.path.abspath(params.out), f"run-{run_key}")
    full = {"run_key": run_key, "corpus": params.corpus, **corpus_id, "corpus_kind": "labeled",
            "tasks_train": train.counts(), "tasks_val": val.counts(), "init": os.path.abspath(params.init),
            "init_sha256": init_sha, "config": cfg.name, "config_hash": cfg.config_hash(),
            "input_mode": cfg.input_mode, "pretrain_run_key": (pre or {}).get("run_key"),
            "tokenizer_sha256": identity(lineage).get("tokenizer_sha256"),
            "vocab_version": identity(lineage).get("vocab_version"), "pretrain": pre, "positions": params.positions,
            "temperature": params.temperature, "train_config": tcfg.model_dump(mode="json"), "text": text.identity,
            "processes": env.world}
    return PreparedTune(params=params, cfg=cfg, tcfg=tcfg, train=train, val=val, texts=texts, text=text, env=env,
                        steps_per_epoch=spe, run_key=run_key, run_dir=run_dir, lineage=full, signals=signals,
                        notes=notes)


# -- the tuned model -------------------------------------------------------------------------------
INSTRUCT_FILE = "instruct.json"


def instruct_info(run: PreparedTune) -> dict[str, Any]:
    """What a user of the tuned model folder needs besides the weights (``model/instruct.json``)."""
    return {"kind": "neurolm-instruct", "positions": run.params.positions, "eeg_len": run.params.eeg_len,
            "tasks": sorted(run.train.counts()), "run_key": run.run_key,
            "corpus_version": run.train.corpus.version_id, "init_sha256": run.lineage.get("init_sha256")}


def write_model(model, directory: str, info: dict[str, Any] | None = None) -> None:
    """save_lm (+ ``instruct.json``) into a fresh folder, then swap it in (a kill leaves the previous model)."""
    _write_lm(model, directory, {INSTRUCT_FILE: info} if info is not None else None)


def _save(run: PreparedTune, model, opt, scaler, step: int, history: list, val_history: list) -> str:
    state = checkpoint_state(STATE_KIND, run, step, opt, scaler, history, val_history)
    return save(run, model, state, {INSTRUCT_FILE: instruct_info(run)})


def majority_baseline(train: LabeledSplit, val: LabeledSplit) -> dict[str, float]:
    """Per task: val accuracy of always answering the train split's most frequent label."""
    out = {}
    for name in sorted(set(val.tasks.tolist())):
        tl = train.labels[train.tasks == name]
        vl = val.labels[val.tasks == name]
        if len(tl) and len(vl):
            out[name] = float(np.mean(vl == np.bincount(tl).argmax()))
    return out


# -- the run --------------------------------------------------------------------------------------
def tune(params: TuneParams, *, log: Callable[[str], None] = quiet, emit: Callable[[dict], None] = quiet,
         run: PreparedTune | None = None) -> dict[str, Any]:
    """Tune (or resume, or find finished) the run of ``params``; returns its summary (``outputs``: where things are)."""
    t_start = time.perf_counter()
    run = run or prepare(params)
    env, cfg, tcfg = run.env, run.cfg, run.tcfg
    done = finished(run, log)
    if done is not None:
        return done
    for note in run.notes:
        log(note)

    device = start_process(run)
    model = load_lm(params.init).train().to(device)
    objective = InstructObjective(model, params.positions)
    opt = make_optimizer(model, tcfg)
    scaler = grad_scaler(device, tcfg.amp)

    train_b, val_b = run.batches("train"), run.batches("val")
    res = resume(run, model, opt, scaler, device,
                 lambda ckpt: check_checkpoint(ckpt, run, STATE_KIND, "instruction-tuning"), log)
    text_b = write_run_files(run)
    baseline = majority_baseline(run.train, run.val)
    emit({"event": "plan", "run_dir": run.run_dir, "run_key": run.run_key, "start": res.start, "total": tcfg.steps,
          "steps_per_epoch": run.steps_per_epoch, "tasks": run.train.counts(), "baseline": baseline,
          "probabilities": train_b.probabilities})
    log(f"run {run.run_key}: tuning {cfg.name} on {run.train.counts()} (task probabilities "
        f"{ {k: round(v, 3) for k, v in train_b.probabilities.items()} }), steps {res.start} → {tcfg.steps}, "
        f"{run.steps_per_epoch} steps/epoch, text positions {params.positions}")

    ddp = wrap_ddp(objective, env, device)
    hooks = LoopHooks(
        step=lambda step, batches, text: train_step(ddp or objective, opt, step, tcfg, batches, text, scaler),
        tokens=lambda batches, text: (sum(int(b["mask"].sum()) + b["text"].numel() for b in batches)
                                      + sum(int(x.numel()) for x, _ in text)),
        validate=lambda: validate(objective, val_b.epoch(0), run.texts.names, tcfg.amp),
        val_line=lambda v: (f"val instruction loss {v['loss']:.4f}, answer accuracy {v['answer_accuracy']:.4f} "
                            f"{ {k: round(a, 3) for k, a in v['answer_accuracy_per_task'].items()} }"),
        save=lambda step, history, val_history: _save(run, model, opt, scaler, step, history, val_history))
    loop = train_loop(hooks, run, train_b, text_b, res, log, emit)
    if res.start >= tcfg.steps and not os.path.isdir(run.model_dir) and env.is_main:
        write_model(model, run.model_dir, instruct_info(run))  # killed between the last checkpoint and the model swap
    evaluation = run_evaluation(run, log) if env.is_main and params.evaluate else None
    return _finish(run, loop, baseline, time.perf_counter() - t_start, tcfg.steps - res.start, evaluation)


def run_evaluation(run: PreparedTune, log: Callable[[str], None]) -> Any:
    """Evaluate the tuned model on its corpus's val and test splits (``params.evaluate``), as ``neurolm evaluate``
    does: the outputs go to ``RUN/evaluation/<corpus version>/``."""
    from neurolm.instruct.evaluate import evaluate_model

    p = run.params
    log(f"evaluating the tuned model on {p.corpus}")
    return evaluate_model(run.model_dir, p.corpus, corpus_version=run.train.corpus.version_id, device=p.device,
                          positions=p.positions, bpe=p.bpe, log=log)


def _finish(run: PreparedTune, loop, baseline, wall, done_now, evaluation) -> dict[str, Any]:
    history, val_history = loop.history, loop.val_history
    summary: dict[str, Any] = {
        "run_key": run.run_key, "run_dir": run.run_dir, "model_dir": run.model_dir, "config": run.cfg.name,
        "input_mode": run.cfg.input_mode, "positions": run.params.positions, "temperature": run.params.temperature,
        "steps": run.tcfg.steps, "epochs": run.tcfg.steps / run.steps_per_epoch, "steps_done_now": done_now,
        "nothing_to_do": False, "tasks": run.train.counts(), "val": val_history[-1] if val_history else {},
        "baseline": baseline, "final_train": history[-1] if history else {},
        "tokens_per_s": tokens_per_s(loop.tokens, loop.loop_s), "wall_s": round(wall, 2),
        "evaluation": evaluation, "lineage": run.lineage,
    }
    if run.env.is_main:
        publish(run, summary, curves_png(history, val_history, baseline), report_markdown,
                tune_outputs(run.model_dir, run.cfg.config_hash(), run.run_dir), loop.last_ckpt,
                {"config": os.path.join(run.model_dir, CONFIG_FILE)})
        from neurolm.instruct.model_card import write_model_card

        write_model_card(run.run_dir)  # after summary.json: the card reads the run's records (evaluations included)
    return summary
