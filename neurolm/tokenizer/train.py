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
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer.config import TokenizerConfig, TrainConfig
from neurolm.tokenizer.metrics import MetricWindow, lr_at
from neurolm.tokenizer.text import TextTokenSource, load_text_embedding
from neurolm.tokenizer.vq import VQTokenizer, dann_alpha
from neurolm.tokenizer.weights import config_from_metadata, model_weights, tokenizer_metadata
from storage import checkpoints, fs


def code_version() -> str:
    """sha256[:12] over this package's sources: which tokenizer code produced a checkpoint."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


class StepBatchSampler(Sampler[list[int]]):
    """Index lists for steps ``start..total-1``; the batch of (step, micro, rank) depends on nothing else.

    The sample stream is a sequence of epochs, each a permutation seeded by
    (seed, epoch); global position p = ((step·accum + micro)·world + rank)·B + j.
    """

    def __init__(self, n: int, batch_size: int, accum: int, seed: int, start: int, total: int,
                 rank: int = 0, world: int = 1):
        self.n, self.b, self.accum, self.seed = n, batch_size, accum, seed
        self.start, self.total, self.rank, self.world = start, total, rank, world
        self._perms: dict[int, np.ndarray] = {}

    def _at(self, p: int) -> int:
        epoch = p // self.n
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n)}
        return int(self._perms[epoch][p % self.n])

    def batch(self, step: int, micro: int) -> list[int]:
        base = ((step * self.accum + micro) * self.world + self.rank) * self.b
        return [self._at(base + j) for j in range(self.b)]

    def __iter__(self):
        for step in range(self.start, self.total):
            for micro in range(self.accum):
                yield self.batch(step, micro)

    def __len__(self) -> int:
        return (self.total - self.start) * self.accum


@dataclass
class TrainResult:
    out_dir: str
    steps: int
    history: list[dict] = field(default_factory=list)
    checkpoint: str | None = None
    seconds: float = 0.0
    patches: int = 0


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _device(requested: str, local_rank: int) -> torch.device:
    """The torch device for ``cpu``, ``cuda`` (this rank's GPU) or ``cuda:N``; ConfigError if absent."""
    if requested.startswith("cuda"):
        if requested == "cuda":
            index = local_rank
        elif requested.startswith("cuda:") and requested[5:].isdigit():
            index = int(requested[5:])
        else:
            raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {requested} requested but CUDA is not available on this machine")
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {requested}: CUDA device {index} does not exist "
                              f"(this machine has {torch.cuda.device_count()})")
        return torch.device("cuda", index)
    if requested != "cpu":
        raise ConfigError(f"unknown device {requested!r}; use cpu, cuda or cuda:N")
    return torch.device("cpu")


def _amp(device: torch.device, mode: str):
    """(autocast context, GradScaler or None): bf16 when supported, else fp16 + scaler; CPU fp32."""
    if device.type != "cuda" or mode == "off":
        return nullcontext, None
    if torch.cuda.is_bf16_supported():
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def make_optimizer(model: torch.nn.Module, tcfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW; weight decay only on tensors with ≥ 2 dims (matmuls, embeddings), never on norms/biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": tcfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=tcfg.lr, betas=tcfg.betas, **extra)


def _rng_state() -> dict:
    st = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    v, inner, gauss = st["python"]
    random.setstate((v, tuple(inner), gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _resume(out_dir: str, cfg: TokenizerConfig, lineage: dict, resume: bool):
    ckpt = checkpoints.load_latest_good(out_dir)
    if ckpt is None:
        return None
    if not resume:
        raise ConfigError(f"{out_dir} already holds checkpoints (latest step {ckpt.step}); "
                          "resume, or choose a new output directory")
    got = ckpt.metadata.get("config_hash")
    if "tokenizer_config" in ckpt.metadata:  # compare configs, so checkpoints from before conv_norm resume
        got = config_from_metadata(ckpt.metadata, ckpt.path).config_hash()
    if got != cfg.config_hash():
        raise ConfigError(f"checkpoint {ckpt.path} was trained with config hash {got}, "
                          f"this run uses {cfg.config_hash()} ({cfg.name}); use the same config or a new --out")
    old = ckpt.lineage.get("store_version")
    if old and lineage.get("store_version") and old != lineage["store_version"]:
        raise ConfigError(f"checkpoint {ckpt.path} was trained on store version {old}, "
                          f"this run reads {lineage['store_version']}; resuming would change the data")
    return ckpt


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
    rank, world, local_rank = _dist_env()
    dev = _device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if rank == 0:
        fs.check_writable(out_dir)
    lineage = {**(lineage or {}), "config_hash": cfg.config_hash(), "config": cfg.model_dump(),
               "train_config": tcfg.model_dump(), "code_version": code_version(), "torch": torch.__version__,
               "world_size": world}
    ckpt = _resume(out_dir, cfg, lineage, resume)

    torch.manual_seed(tcfg.seed)
    model = VQTokenizer(cfg).to(dev)
    window = MetricWindow(cfg.codebook_size)
    text = None
    if tcfg.text_batch_size > 0:
        table = load_text_embedding(cfg.text_embedding)
        model.attach_text_embedding(table)
        text = TextTokenSource(table.shape[0], tcfg.seed, text_token_file)
        lineage["text_tokens"] = text.describe()
        if text_token_file is None and cfg.text_embedding == "gpt2" and rank == 0:
            warnings.warn("no text token file: the text side of alignment draws GPT-2 ids uniformly, not from "
                          "OpenWebText as the original; pass a nanoGPT train.bin (--text-tokens) to match it",
                          UserWarning, stacklevel=2)
    opt = make_optimizer(model, tcfg, dev)
    autocast, scaler = _amp(dev, tcfg.amp)
    start, history = 0, []
    if ckpt is not None:
        model.load_state_dict({k: v.to(dev) for k, v in ckpt.weights.items()}, strict=True)
        opt.load_state_dict(ckpt.state["optimizer"])
        if scaler is not None and ckpt.state.get("scaler"):
            scaler.load_state_dict(ckpt.state["scaler"])
        window.load(ckpt.state["window"])
        _set_rng_state(ckpt.state["rng"])
        start, history = int(ckpt.state["step"]), list(ckpt.state["history"])
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None) \
        if world > 1 else None
    fwd = ddp or model
    if tcfg.compile:
        fwd = torch.compile(fwd)

    sampler = StepBatchSampler(len(dataset), tcfg.batch_size, tcfg.grad_accum, tcfg.seed, start, tcfg.steps,
                               rank, world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=tcfg.num_workers,
                        persistent_workers=False, pin_memory=dev.type == "cuda")
    batches = iter(loader)
    dead_window = tcfg.dead_code_every or 100
    last_path, patches = None, 0

    def save(step: int) -> str | None:
        if rank != 0:
            return None
        state = {"step": step, "optimizer": opt.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                 "rng": _rng_state(), "window": window.state(), "history": history}
        return checkpoints.save_checkpoint(out_dir, model_weights(model), state, lineage,
                                           keep_last=tcfg.keep_last, metadata=tokenizer_metadata(cfg))

    model.train()
    for step in range(start, tcfg.steps):
        if stop_after is not None and step >= stop_after:
            break
        lr = lr_at(step, tcfg.steps, tcfg.lr, tcfg.min_lr, tcfg.warmup_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        alpha = tcfg.domain_alpha * dann_alpha(step / tcfg.steps)
        text_ids = text.batch(step, tcfg.text_batch_size, tcfg.text_seq_len).to(dev) if text else None
        for micro in range(tcfg.grad_accum):
            batch = {k: v.to(dev, non_blocking=True) for k, v in next(batches).items()}
            sync = ddp.no_sync if (ddp is not None and micro < tcfg.grad_accum - 1) else nullcontext
            with sync(), autocast():
                loss, terms, codes = fwd(batch, alpha=alpha, text_ids=text_ids if micro == 0 else None)
            loss = loss / tcfg.grad_accum
            (scaler.scale(loss) if scaler else loss).backward()
            window.add(terms, codes, batch["mask"].bool(), step)
            patches += int(batch["mask"].sum())
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        if tcfg.dead_code_every and (step + 1) % tcfg.dead_code_every == 0:
            q = model.VQ.quantize
            gen = torch.Generator().manual_seed(tcfg.seed * 1_000_003 + step)
            dead = window.dead(step, dead_window)
            window.reseeded += q.reseed(dead.to(dev), q.recent if q.recent is not None else torch.empty(0), gen)
            window.last_used[dead] = step
        if (step + 1) % tcfg.log_every == 0 or step + 1 == tcfg.steps:
            line = window.flush(step + 1, dead_window, lr)
            history.append(line)
            if on_log and rank == 0:
                on_log(line)
        if on_step and rank == 0:
            on_step(step + 1, tcfg.steps)
        if (step + 1) % tcfg.ckpt_every == 0 or step + 1 == tcfg.steps:
            last_path = save(step + 1)
            if world > 1:
                dist.barrier()
    done = min(tcfg.steps, stop_after if stop_after is not None else tcfg.steps)
    return TrainResult(out_dir=out_dir, steps=done, history=history, checkpoint=last_path,
                       seconds=time.perf_counter() - t0, patches=patches)
