"""Training loop of the text-aligned VQ tokenizer (reference §2.5), nanoGPT-style: one function, visible.

Properties a user can rely on:

- **Resumable, same trajectory.** The batch of step s is a pure function of
  (seed, s) (:class:`StepBatchSampler`), text batches and re-seeding likewise,
  and optimizer, scaler, RNG and metric-window state are checkpointed. A run
  killed with ``kill -9`` and resumed continues the uninterrupted run's
  trajectory (bit-identical on CPU).
- **Fails before work.** Missing data, a checkpoint of a different model config
  or store version, an unavailable device: clear ``ConfigError``/``StoreError``
  before the first step.
- **DDP-ready.** Under ``torchrun`` (RANK/WORLD_SIZE/LOCAL_RANK) each rank takes its
  slice of every global batch, gradients and codebook EMA statistics are
  all-reduced, rank 0 writes checkpoints.

The plumbing (device, distributed env, mixed precision, RNG state, step
sampler, checkpoint/resume, lr schedule) is :mod:`neurolm.training`'s, shared
with the other training stages; what is here is the tokenizer's own.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer.config import TokenizerConfig, TrainConfig
from neurolm.tokenizer.metrics import MetricWindow
from neurolm.tokenizer.text import TextTokenSource, load_text_embedding
from neurolm.tokenizer.vq import VQTokenizer, dann_alpha
from neurolm.tokenizer.weights import config_from_metadata, model_weights, tokenizer_metadata
from neurolm.training import (StepBatchSampler, autocast_and_scaler, backward, barrier, dist_env, due,
                              find_resume, init_distributed, lr_at, make_adamw, optimizer_step, resolve_device,
                              restore, set_lr, training_state, wrap_ddp)
from storage import checkpoints, fs
from storage.checkpoints import Checkpoint


def code_version() -> str:
    """sha256[:12] over this package's sources: which tokenizer code produced a checkpoint."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    history: list[dict] = field(default_factory=list)
    checkpoint: str | None = None
    seconds: float = 0.0
    patches: int = 0


def make_optimizer(model: torch.nn.Module, tcfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the training config's lr, betas and weight decay (on ≥ 2-D tensors only)."""
    return make_adamw(model, tcfg.lr, tcfg.weight_decay, tcfg.betas, device)


def _same_model(cfg: TokenizerConfig) -> Callable[[Checkpoint], None]:
    """The resume check: the checkpoint's model config is ``cfg``'s (ConfigError otherwise)."""

    def check(ckpt: Checkpoint) -> None:
        got = ckpt.metadata.get("config_hash")
        if "tokenizer_config" in ckpt.metadata:  # compare configs, so checkpoints from before conv_norm resume
            got = config_from_metadata(ckpt.metadata, ckpt.path).config_hash()
        if got != cfg.config_hash():
            raise ConfigError(f"checkpoint {ckpt.path} was trained with config hash {got}, "
                              f"this run uses {cfg.config_hash()} ({cfg.name}); use the same config or a new --out")

    return check


def train(cfg: TokenizerConfig, tcfg: TrainConfig, dataset: Dataset, out_dir: str, *, device: str = "cpu",
          resume: bool = True, lineage: dict | None = None, stop_after: int | None = None,
          text_token_file: str | None = None, on_log: Callable[[dict], None] | None = None,
          on_step: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train (or resume training) until ``tcfg.steps``; checkpoints go to ``out_dir``.

    ``stop_after``: return after that many total steps without a final checkpoint,
    exactly as if the process had been killed (tests, time-boxed jobs).
    """
    t0 = time.perf_counter()
    if len(dataset) == 0:
        raise StoreError("the training dataset is empty")
    env = dist_env()
    dev = resolve_device(device, env.local_rank)
    init_distributed(env, dev)
    if env.is_main:
        fs.check_writable(out_dir)
    lineage = {**(lineage or {}), "config_hash": cfg.config_hash(), "config": cfg.model_dump(),
               "train_config": tcfg.model_dump(), "code_version": code_version(), "torch": torch.__version__,
               "world_size": env.world}
    ckpt = find_resume(out_dir, resume, lineage, same_data=("store_version",), check=_same_model(cfg))

    torch.manual_seed(tcfg.seed)
    model = VQTokenizer(cfg).to(dev)
    window = MetricWindow(cfg.codebook_size)
    text = None
    if tcfg.text_batch_size > 0:
        table = load_text_embedding(cfg.text_embedding)
        model.attach_text_embedding(table)
        text = TextTokenSource(table.shape[0], tcfg.seed, text_token_file)
        lineage["text_tokens"] = text.describe()
        if text_token_file is None and cfg.text_embedding == "gpt2" and env.is_main:
            warnings.warn("no text token file: the text side of alignment draws GPT-2 ids uniformly, not from "
                          "OpenWebText as the original; pass a nanoGPT train.bin (--text-tokens) to match it",
                          UserWarning, stacklevel=2)
    opt = make_optimizer(model, tcfg, dev)
    autocast, scaler = autocast_and_scaler(dev, tcfg.amp)
    start, history = 0, []
    if ckpt is not None:
        start, history = restore(ckpt, model, opt, scaler, dev)
        window.load(ckpt.state["window"])
    ddp = wrap_ddp(model, env, dev)
    fwd = ddp or model
    if tcfg.compile:
        fwd = torch.compile(fwd)

    sampler = StepBatchSampler(len(dataset), tcfg.batch_size, tcfg.grad_accum, tcfg.seed, start, tcfg.steps,
                               env.rank, env.world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=tcfg.num_workers,
                        persistent_workers=False, pin_memory=dev.type == "cuda")
    batches = iter(loader)
    dead_window = tcfg.dead_code_every or 100
    last_path, patches = None, 0

    def save(step: int) -> str | None:
        if not env.is_main:
            return None
        state = training_state(step, opt, scaler, history, window=window.state())
        return checkpoints.save_checkpoint(out_dir, model_weights(model), state, lineage,
                                           keep_last=tcfg.keep_last, metadata=tokenizer_metadata(cfg))

    model.train()
    for step in range(start, tcfg.steps):
        if stop_after is not None and step >= stop_after:
            break
        lr = lr_at(step, tcfg.steps, tcfg.lr, tcfg.min_lr, tcfg.warmup_steps)
        set_lr(opt, lr)
        alpha = tcfg.domain_alpha * dann_alpha(step / tcfg.steps)
        text_ids = text.batch(step, tcfg.text_batch_size, tcfg.text_seq_len).to(dev) if text else None
        for micro in range(tcfg.grad_accum):
            batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
            sync = ddp.no_sync if (ddp is not None and micro < tcfg.grad_accum - 1) else nullcontext
            with sync(), autocast():
                loss, terms, codes = fwd(batch, alpha=alpha, text_ids=text_ids if micro == 0 else None)
            backward(loss / tcfg.grad_accum, scaler)
            window.add(terms, codes, batch["mask"].bool(), step)
            patches += int(batch["mask"].sum())
        optimizer_step(opt, scaler)
        if tcfg.dead_code_every and (step + 1) % tcfg.dead_code_every == 0:
            q = model.VQ.quantize
            gen = torch.Generator().manual_seed(tcfg.seed * 1_000_003 + step)
            dead = window.dead(step, dead_window)
            window.reseeded += q.reseed(dead.to(dev), q.recent if q.recent is not None else torch.empty(0), gen)
            window.last_used[dead] = step
        if due(step, tcfg.log_every, tcfg.steps):
            line = window.flush(step + 1, dead_window, lr)
            history.append(line)
            if on_log and env.is_main:
                on_log(line)
        if on_step and env.is_main:
            on_step(step + 1, tcfg.steps)
        if due(step, tcfg.ckpt_every, tcfg.steps):
            last_path = save(step + 1)
            barrier(env)
    done = min(tcfg.steps, stop_after if stop_after is not None else tcfg.steps)
    return TrainResult(out_dir=out_dir, steps=done, history=history, checkpoint=last_path,
                       seconds=time.perf_counter() - t0, patches=patches)
