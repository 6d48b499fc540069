"""Training-loop plumbing shared by every training stage (tokenizer, pretraining, instruction tuning).

The two LM stages (``neurolm.lm.run``, ``neurolm.instruct.run``) also share one run runtime, imported
from its modules (not re-exported here: they build on ``neurolm.lm``): :mod:`.lm_run` (the prepared
run, skip-if-done, resume, checkpoints, run files, report and summary), :mod:`.lm_loop` (the
accumulate-validate-checkpoint loop, with the stage's :class:`~.lm_loop.LoopHooks`), :mod:`.lm_step`
(one accumulation step: clip, precision) and :mod:`.lm_report` (the report's figure and markdown frame).

Nothing here knows a model: a stage keeps its model, data and loss, and calls
these pieces, nanoGPT-style, in its own visible loop. What a new training stage calls:

Set-up (fails before work)
    ``env = dist_env()``                        rank / world / local rank from ``torchrun`` (:mod:`.distributed`)
    ``dev = resolve_device("cuda", env.local_rank)``  ConfigError when absent (:mod:`.device`)
    ``init_distributed(env, dev)``              NCCL/Gloo process group when world > 1
    ``ckpt = find_resume(out, resume, lineage, same_data=("store_version",), check=...)``
                                                latest good checkpoint, or None; ConfigError when
                                                resuming would mix configs or data (:mod:`.checkpointing`)
Model and optimizer
    ``opt = make_adamw(model, lr, weight_decay, betas, dev)``  decay on ≥ 2-D tensors only (:mod:`.optim`)
    ``autocast, scaler = autocast_and_scaler(dev, "auto")``   bf16, or fp16 + GradScaler, CPU fp32
                                                (:mod:`.precision`)
    ``start, history = restore(ckpt, model, opt, scaler, dev)``  weights, optimizer, scaler, RNGs
    ``ddp = wrap_ddp(model, env, dev)``         DistributedDataParallel, or None for one process
Data
    ``StepBatchSampler(n, batch, accum, seed, start, total, env.rank, env.world)``  as a DataLoader's
                                                ``batch_sampler``: the batch of a step is a pure function
                                                of (seed, step), so a resumed run continues the same
                                                trajectory (:mod:`.sampler`)
Each step
    ``set_lr(opt, lr_at(step, total, lr, min_lr, warmup))``  linear warm-up + cosine decay
    ``with autocast(): loss = ...``; ``backward(loss, scaler)``; ``optimizer_step(opt, scaler)``
    ``if due(step, log_every, total): history.append(line)``  (:mod:`.metrics`)
    ``if due(step, ckpt_every, total) and env.is_main:``
    ``    storage.checkpoints.save_checkpoint(out, weights, training_state(step + 1, opt, scaler, history,
    **extras), lineage)``; then ``barrier(env)``
Report
    ``write_report(history, out, cols, panels)``  ``loss_curve.png`` + ``metrics.md``; ``metrics_markdown``
"""

from __future__ import annotations

from neurolm.training.checkpointing import find_resume, restore, training_state
from neurolm.training.device import resolve_device
from neurolm.training.distributed import DistEnv, barrier, dist_env, init_distributed, wrap_ddp
from neurolm.training.metrics import Panel, due, metrics_markdown, write_report
from neurolm.training.optim import lr_at, make_adamw, set_lr
from neurolm.training.precision import autocast_and_scaler, backward, optimizer_step
from neurolm.training.rng import rng_state, set_rng_state
from neurolm.training.sampler import StepBatchSampler

__all__ = [
    "DistEnv", "Panel", "StepBatchSampler", "autocast_and_scaler", "backward", "barrier", "dist_env", "due",
    "find_resume", "init_distributed", "lr_at", "make_adamw", "metrics_markdown", "optimizer_step",
    "resolve_device", "restore", "rng_state", "set_lr", "set_rng_state", "training_state", "wrap_ddp",
    "write_report",
]
