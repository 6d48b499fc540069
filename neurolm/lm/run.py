"""Stage 2 as one library call: :func:`pretrain` (the Prefect flow ``flows/pretrain.py`` only wires it).

check inputs (one clear error each, before any training step) → run folder keyed by the inputs
→ resume from its last good checkpoint, or do nothing when the run is finished → the loop:
every step an EEG batch and a text batch (equal loss weight), validation at every epoch end,
checkpoints → report (curves PNG + markdown) → summary with ``outputs``.

Run folder ``OUT/run-<key>/`` (``key`` = sha256 of the resolved inputs: corpus version, tokenizer
sha256, model config hash, training config, input mode, text identity, sequence length, processes)::

    checkpoints/ckpt-<step>/   storage.checkpoints: weights + JSON training state (optimizer tensors in
                               safetensors, RNG states, step, sampler position, history), lineage, manifest
    model/                     save_lm layout (``GPT2Model.from_pretrained`` loads the backbone), rewritten
                               at every checkpoint: the model a user takes elsewhere
    lineage.json               where the run came from (also in every checkpoint)
    text/bundled.bin           only when no text file was given (see :mod:`neurolm.lm.sample_text`)
    curves.png, report.md      at the end (``report.md`` embeds the PNG)
    summary.json               written last: the run is finished; the same inputs again do nothing

The batch of a step is a pure function of (seed, step): EEG micro-batches are a global stream over
epochs (batch order from (seed, epoch)), text windows from (seed, micro-batch index). A resumed run
(also after ``kill -9``) therefore continues the same trajectory: on CPU the per-step losses and the
final weights equal those of an uninterrupted run.

Under ``torchrun`` each rank takes every ``world``-th micro-batch of the stream; rank 0 validates,
writes checkpoints and reports.

The run folder, resume and the loop are the LM-stage runtime's (:mod:`neurolm.training.lm_run`, shared
with instruction tuning); this module keeps what is pretraining's own: its inputs and run key, the
model, EEG batches, loss (:mod:`.train`), baselines and report.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurolm.errors import ConfigError
from neurolm.lm.config import LMConfig, LMTrainConfig, load_lm_configs
from neurolm.lm.data import EEGBatches, SignalPatches, attach_tokenizer, identity, open_corpus
from neurolm.lm.model import NeuroLM
from neurolm.lm.params import PretrainParams
from neurolm.lm.text import read_token_bin
from neurolm.lm.baselines import bigram_baseline, unigram_baseline
from neurolm.lm.train import evaluate, make_optimizer, train_step
from neurolm.outputs import model_outputs
from neurolm.training import DistEnv, dist_env, wrap_ddp
from neurolm.training.lm_loop import LoopHooks, train_loop
from neurolm.training.lm_run import (PreparedRun, canonical_hash, check_checkpoint, checkpoint_state, finished,
                                     load_history, publish, quiet, resume, save, start_process, steps_per_epoch,
                                     tokens_per_s, write_run_files)
from neurolm.training.lm_step import grad_scaler
from neurolm.lm.data import load_corpus_tokenizer
from neurolm.lm.report import curves_png, report_markdown
from neurolm.lm.sample_text import DOCUMENTS
from neurolm.lm.text import encode_documents, load_gpt2_bpe
from storage.checkpoints import checkpoint_sha256

__all__ = ["PreparedPretrain", "TextSource", "baseline_line", "load_history", "prepare", "pretrain", "resolve_text",
           "versus_line", "versus_unigram"]

STATE_KIND = "neurolm-pretrain-v1"
BASELINE_BATCHES = 256  # train batches the baselines count (a sample of a large corpus)


def _sha256_file(path: str, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        left = limit
        while left is None or left > 0:
            chunk = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            left = None if left is None else left - len(chunk)
    return h.hexdigest()


# -- inputs ---------------------------------------------------------------------------------------
def resolve_configs(params: PretrainParams) -> tuple[LMConfig, LMTrainConfig]:
    cfg, tcfg = load_lm_configs(params.config, **params.train_overrides())
    if cfg.input_mode != params.input_mode:
        cfg = LMConfig(**{**cfg.model_dump(), "input_mode": params.input_mode})
    return cfg, tcfg


def check_positions(corpora, cfg: LMConfig, tcfg: LMTrainConfig, max_len: int) -> None:
    """ConfigError when a sample or a text window would not fit the position table or ``max_len``."""
    if tcfg.text_batch_size and tcfg.text_seq_len > cfg.block_size:
        raise ConfigError(f"text windows of {tcfg.text_seq_len} tokens exceed the position table "
                          f"({cfg.block_size} rows)")
    for c in corpora:
        ntok = c.manifest["n_tokens"].to_numpy()[c.selected]
        if len(ntok) and int(ntok.max()) > max_len:
            raise ConfigError(f"corpus samples hold up to {int(ntok.max())} tokens, more than max_len={max_len}")
        if not len(ntok) or int(ntok.max()) <= cfg.block_size:
            continue  # seconds ≤ tokens: cannot exceed the table
        for i in np.flatnonzero(ntok > cfg.block_size).tolist():
            n_sec = int(c[i]["time"].max()) + 1
            if n_sec > cfg.block_size:
                row = c.manifest.iloc[c.locate(i)[2]]
                raise ConfigError(f"sample {row['recording_id']}@{row['window_start']} spans {n_sec} seconds, "
                                  f"longer than the position table ({cfg.block_size} rows)")


@dataclass
class TextSource:
    """The uint16 token file of the text batches and how it was obtained (for the lineage)."""

    path: str | None
    identity: dict[str, Any]
    ids: np.ndarray | None = None  # bundled text: written into the run folder once it is known


def resolve_text(params: PretrainParams, tcfg: LMTrainConfig, text_vocab: int) -> TextSource:
    if not tcfg.text_batch_size:
        return TextSource(None, {"source": "none (text_batch_size=0)"})
    if params.text:
        data = read_token_bin(params.text)  # ConfigError: missing / not uint16
        if len(data) < tcfg.text_seq_len + 1:
            raise ConfigError(f"{params.text} holds {len(data)} tokens; a text window needs {tcfg.text_seq_len + 1}")
        head = np.asarray(data[: 1 << 24])
        if int(head.max()) >= text_vocab:
            raise ConfigError(f"{params.text} holds token id {int(head.max())} ≥ the model's text vocabulary "
                              f"({text_vocab}): not a GPT-2 token file")
        return TextSource(os.path.abspath(params.text), {
            "source": os.path.abspath(params.text), "tokens": int(len(data)),
            "sha256_first_32MiB": _sha256_file(params.text, 1 << 25)})

    ids = encode_documents(load_gpt2_bpe(params.bpe), DOCUMENTS)
    if len(ids) < tcfg.text_seq_len + 1:
        raise ConfigError(f"the bundled sample text holds {len(ids)} tokens, too few for text windows of "
                          f"{tcfg.text_seq_len}: give --text FILE.bin (nanoGPT's uint16 train.bin)")
    return TextSource(None, {"source": "bundled sample text (neurolm.lm.sample_text), tokenized with GPT-2's "
                                       "BPE because no --text file was given", "bpe": params.bpe,
                             "tokens": int(len(ids)), "sha256": hashlib.sha256(ids.tobytes()).hexdigest()}, ids)


@dataclass(kw_only=True)
class PreparedPretrain(PreparedRun):
    """Everything checked and resolved before training: the shared run fields, the corpus splits, the tokenizer."""

    params: PretrainParams
    train: Any
    val: Any
    tokenizer: str

    def batches(self, split: str, signals: bool = True) -> EEGBatches:
        """``split``'s batches; ``signals=False``: codes and targets only (no signal reads in features mode)."""
        p, t = self.params, self.tcfg
        access = "index" if self.signals is not None else "stream"
        sig = self.signals if signals else None
        if split == "train":
            return EEGBatches(self.train, t.batch_size, p.max_len, seed=t.seed, access=access, signals=sig)
        return EEGBatches(self.val, t.batch_size, p.max_len, shuffle=False, drop_last=False, access=access,
                          signals=sig)

    def baselines(self) -> dict[str, Any]:
        """The unigram baseline (its keys at the top level) with the bigram one under ``"bigram"``."""
        import itertools

        k = self.cfg.codebook_size
        train, val = self.batches("train", signals=False), self.batches("val", signals=False)
        out = unigram_baseline(itertools.islice(train.epoch(0), BASELINE_BATCHES), val.epoch(0), k)
        out["bigram"] = bigram_baseline(itertools.islice(train.epoch(0), BASELINE_BATCHES), val.epoch(0), k)
        return out


def prepare(params: PretrainParams, env: DistEnv | None = None) -> PreparedPretrain:
    """Check every input and resolve the run folder; ConfigError/StoreError before any work."""
    env = env or dist_env()
    cfg, tcfg = resolve_configs(params)
    train, val = open_corpus(params.corpus, cfg, params.corpus_version)  # splits, codebook, tokenizer, vocab
    check_positions((train, val), cfg, tcfg, params.max_len)
    lineage = train.lineage
    tokenizer = params.tokenizer or (lineage.get("info") or {}).get("checkpoint")
    if not tokenizer:
        raise ConfigError("the corpus lineage names no tokenizer checkpoint: pass --tokenizer")

    tok = load_corpus_tokenizer(tokenizer, lineage)  # sha256 must be the corpus's
    if tok.config.config_hash() != cfg.tokenizer.config_hash():
        raise ConfigError(f"tokenizer {tokenizer} has config {tok.config.config_hash()}, the model expects "
                          f"{cfg.tokenizer.config_hash()}")

    tok_sha = identity(lineage).get("tokenizer_sha256")
    if tok_sha in (None, "synthetic"):
        tok_sha = checkpoint_sha256(tokenizer)
    signals = SignalPatches(lineage, store_url=params.store) if cfg.input_mode == "features" else None
    text = resolve_text(params, tcfg, cfg.text_vocab)
    spe = steps_per_epoch(len(train), tcfg, env)
    if len(val) == 0:
        raise ConfigError("the corpus's val split is empty")
    tcfg = tcfg.resolved(spe)
    key_doc = {"corpus_version": train.version_id, "corpus_content": train.status.get("content_hash"),
               "tokenizer_sha256": tok_sha, "model_config_hash": cfg.config_hash(),
               "train_config": tcfg.model_dump(mode="json"), "input_mode": cfg.input_mode,
               "text": {k: v for k, v in text.identity.items() if k != "bpe"}, "max_len": params.max_len,
               "processes": env.world}
    run_key = canonical_hash(key_doc)[:12]
    run_dir = os.path.join(os.path.abspath(params.out) if "://" not in params.out else params.out, f"run-{run_key}")
    full_lineage = {"run_key": run_key, "corpus": params.corpus, "corpus_version": train.version_id,
                    "corpus_content_hash": train.status.get("content_hash"), "tokenizer": tokenizer,
                    "tokenizer_sha256": tok_sha, "config": cfg.name, "config_hash": cfg.config_hash(),
                    "input_mode": cfg.input_mode, "train_config": tcfg.model_dump(mode="json"),
                    "text": text.identity, "max_len": params.max_len, "processes": env.world,
                    "vocab_version": identity(lineage).get("vocab_version"),
                    "store_version": identity(lineage).get("store_version")}
    return PreparedPretrain(params=params, cfg=cfg, tcfg=tcfg, train=train, val=val, tokenizer=tokenizer, text=text,
                            env=env, steps_per_epoch=spe, run_key=run_key, run_dir=run_dir, lineage=full_lineage,
                            signals=signals)


# -- checkpoints ----------------------------------------------------------------------------------
def _save(run: PreparedPretrain, model: NeuroLM, opt, scaler, step: int, history: list, val_history: list,
          baseline: dict) -> str:
    return save(run, model, checkpoint_state(STATE_KIND, run, step, opt, scaler, history, val_history,
                                             baseline=baseline))


# -- the run --------------------------------------------------------------------------------------
def pretrain(params: PretrainParams, *, log: Callable[[str], None] = quiet,
             emit: Callable[[dict], None] = quiet, run: PreparedPretrain | None = None) -> dict[str, Any]:
    """Train (or resume, or find finished) the run of ``params``; returns its summary (``outputs``: where things are)."""
    t_start = time.perf_counter()
    run = run or prepare(params)
    env, cfg, tcfg = run.env, run.cfg, run.tcfg
    done = finished(run, log)
    if done is not None:
        return done

    device = start_process(run)
    model = NeuroLM(cfg, chan_init_std=0.02 if cfg.name == "tiny" else None)
    attach_tokenizer(model, run.tokenizer, run.train.lineage)
    model.to(device)
    opt = make_optimizer(model, tcfg)
    scaler = grad_scaler(device, tcfg.amp)

    train_b, val_b = run.batches("train"), run.batches("val")
    res = resume(run, model, opt, scaler, device, lambda ckpt: check_checkpoint(ckpt, run, STATE_KIND, "pretraining"),
                 log)
    baseline = dict(res.ckpt.state.get("baseline") or {}) if res.ckpt is not None else {}
    text_b = write_run_files(run)
    if not baseline:
        baseline = run.baselines()
    emit({"event": "plan", "run_dir": run.run_dir, "run_key": run.run_key, "start": res.start, "total": tcfg.steps,
          "steps_per_epoch": run.steps_per_epoch, "baseline": baseline})
    log(f"run {run.run_key}: {cfg.name} ({cfg.input_mode}), steps {res.start} → {tcfg.steps}, "
        f"{run.steps_per_epoch} steps/epoch; baselines on val: {baseline_line(baseline)}")

    ddp = wrap_ddp(model, env, device)
    hooks = LoopHooks(
        step=lambda step, eeg, text: train_step(ddp or model, opt, step, tcfg, eeg, text, scaler),
        tokens=lambda eeg, text: sum(int(b["mask"].sum()) for b in eeg) + sum(int(x.numel()) for x, _ in text),
        validate=lambda: evaluate(model, val_b.epoch(0), tcfg.amp),
        val_line=lambda v: (f"val next-code loss {v['loss']:.4f}, accuracy {v['accuracy']:.4f}, "
                            f"perplexity {v['perplexity']:.1f}; {versus_line(v, baseline)}"),
        save=lambda step, history, val_history: _save(run, model, opt, scaler, step, history, val_history, baseline))
    loop = train_loop(hooks, run, train_b, text_b, res, log, emit)
    return _finish(run, loop, baseline, time.perf_counter() - t_start, tcfg.steps - res.start)


def _finish(run: PreparedPretrain, loop, baseline, wall, done_now):
    history, val_history = loop.history, loop.val_history
    summary: dict[str, Any] = {
        "run_key": run.run_key, "run_dir": run.run_dir, "model_dir": run.model_dir, "config": run.cfg.name,
        "input_mode": run.cfg.input_mode, "steps": run.tcfg.steps, "epochs": run.tcfg.steps / run.steps_per_epoch,
        "steps_done_now": done_now, "nothing_to_do": False, "val": val_history[-1] if val_history else {},
        "baseline": baseline, "vs_unigram": versus_unigram(val_history[-1] if val_history else {}, baseline),
        "final_train": history[-1] if history else {}, "tokens_per_s": tokens_per_s(loop.tokens, loop.loop_s),
        "wall_s": round(wall, 2), "lineage": run.lineage,
    }
    if run.env.is_main:
        publish(run, summary, curves_png(history, val_history, baseline), report_markdown,
                model_outputs(run.model_dir, run.cfg.config_hash(), run.run_dir), loop.last_ckpt)
    return summary


def versus_unigram(val: dict, baseline: dict) -> dict[str, float]:
    """How far the model's val next-code metrics are above the unigram bar: accuracy ratio, loss gap (nats)."""
    acc, b_acc = val.get("accuracy"), baseline.get("accuracy")
    loss, b_loss = val.get("loss"), baseline.get("loss")
    out: dict[str, float] = {}
    if acc is not None and b_acc:
        out["accuracy_ratio"] = acc / b_acc
    if loss is not None and b_loss is not None:
        out["loss_gap"] = b_loss - loss
    return out


def baseline_line(baseline: dict) -> str:
    """'unigram baseline accuracy 0.0164, loss 5.670; bigram baseline (the channel's current code) accuracy ...'."""
    text = (f"unigram baseline accuracy {baseline.get('accuracy', float('nan')):.4f}, "
            f"loss {baseline.get('loss', float('nan')):.3f}")
    big = baseline.get("bigram")
    if big:
        text += (f"; bigram baseline (the channel's current code) accuracy {big['accuracy']:.4f}, "
                 f"loss {big['loss']:.3f}")
    return text


def versus_line(val: dict, baseline: dict) -> str:
    """'accuracy 2.71x the unigram baseline's (0.0164), loss 0.520 nats below it (5.670)'."""
    vs = versus_unigram(val, baseline)
    if not vs:
        return "no unigram baseline"
    parts = []
    if "accuracy_ratio" in vs:
        parts.append(f"accuracy {vs['accuracy_ratio']:.2f}x the unigram baseline's ({baseline['accuracy']:.4f})")
    if "loss_gap" in vs:
        gap = vs["loss_gap"]
        parts.append(f"loss {abs(gap):.3f} nats {'below' if gap >= 0 else 'ABOVE'} it ({baseline['loss']:.3f})")
    return ", ".join(parts)
