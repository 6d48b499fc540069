"""The loop of an LM stage (pretraining, instruction tuning): steps, validation, checkpoints, progress events.

What differs between the stages comes in as :class:`LoopHooks` (their step, token count, validation,
its log line, their checkpoint); the rest is the same: ``grad_accum`` micro-batches (and text LM
batches) a step from one global stream, a ``step`` event each (losses, tokens/s, ETA), validation
and a checkpoint at every epoch end, a checkpoint every ``params.ckpt_every`` steps.

The batch of a step is a pure function of (seed, step): the stage's micro-batches are one global
stream over epochs (:func:`micro_batches`), text windows are indexed by the global micro-batch. A
resumed run (also after ``kill -9``) therefore continues the same trajectory. Under ``torchrun``
each rank takes every ``world``-th micro-batch; rank 0 validates, writes checkpoints and reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neurolm.training.distributed import barrier

if TYPE_CHECKING:
    from neurolm.lm.text import TextBatches
    from neurolm.training.lm_run import PreparedRun, Resumed


def micro_batches(batches, start: int, rank: int = 0, world: int = 1) -> Iterator[dict]:
    """This rank's micro-batches of the global stream from global micro-batch ``start`` on, forever.

    ``batches``: ``len()`` micro-batches per epoch and ``epoch(e, start=k)`` (EEG or instruction batches).
    """
    n = len(batches)
    g = start
    while True:
        epoch, k = divmod(g, n)
        for b in batches.epoch(epoch, start=k):
            if g % world == rank:
                yield b
            g += 1


@dataclass(frozen=True)
class LoopHooks:
    """What a stage does its own way inside the shared loop."""

    step: Callable[[int, list[dict], list[tuple]], dict[str, float]]  # (step, micro-batches, text) → metrics
    tokens: Callable[[list[dict], list[tuple]], int]  # tokens this rank's step read
    validate: Callable[[], dict[str, Any]]  # rank 0, at each epoch end → val metrics (with "loss")
    val_line: Callable[[dict[str, Any]], str]  # the log line of val metrics (after "step N: ")
    save: Callable[[int, list[dict], list[dict]], str]  # rank 0: checkpoint (+ model) at step → its path


@dataclass
class LoopResult:
    history: list[dict]
    val_history: list[dict]
    last_ckpt: str | None
    tokens: int  # all ranks
    loop_s: float


def train_loop(hooks: LoopHooks, run: PreparedRun, train_batches, text_batches: TextBatches | None, res: Resumed,
               log: Callable[[str], None], emit: Callable[[dict], None]) -> LoopResult:
    """Steps ``res.start`` → ``tcfg.steps``: ``grad_accum`` micro-batches (and text batches) a step, a ``step``
    event each, validation at each epoch end, a checkpoint at each epoch end and every ``params.ckpt_every``."""
    tcfg, env, steps_per_epoch, ckpt_every = run.tcfg, run.env, run.steps_per_epoch, run.params.ckpt_every
    history, val_history, start = res.history, res.val_history, res.start
    accum, world = tcfg.grad_accum, env.world
    stream = micro_batches(train_batches, start * accum * world, env.rank, world)
    tokens_now, t_loop = 0, time.perf_counter()
    last_ckpt = res.ckpt.path if res.ckpt is not None else None
    for step in range(start, tcfg.steps):
        batches = [next(stream) for _ in range(accum)]
        text = [text_batches.batch((step * accum + i) * world + env.rank) for i in range(accum)] if text_batches else []
        m = hooks.step(step, batches, text)
        tokens_now += hooks.tokens(batches, text) * world
        done = step + 1
        line = {"step": done, "epoch": round(done / steps_per_epoch, 4), **{k: float(v) for k, v in m.items()}}
        history.append(line)
        elapsed = time.perf_counter() - t_loop
        eta = elapsed / (done - start) * (tcfg.steps - done)
        emit({"event": "step", **line, "total": tcfg.steps,
              "tokens_per_s": tokens_now / elapsed if elapsed > 0 else 0.0, "eta_s": eta})
        epoch_end = done % steps_per_epoch == 0 or done == tcfg.steps
        if epoch_end and env.is_main:
            v = hooks.validate()
            val_history.append({"step": done, "epoch": line["epoch"], **v})
            log(f"step {done}: {hooks.val_line(v)}")
            emit({"event": "val", "step": done, **v})
        if epoch_end or (ckpt_every and done % ckpt_every == 0):
            if env.is_main:
                last_ckpt = hooks.save(done, history, val_history)
                emit({"event": "checkpoint", "step": done, "path": last_ckpt})
            barrier(env)
    return LoopResult(history, val_history, last_ckpt, tokens_now, time.perf_counter() - t_loop)
