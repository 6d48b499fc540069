"""The step sampler: which samples each (step, micro-batch, rank) takes, a pure function of (seed, step)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Index lists for steps ``start..total-1``; the batch of (step, micro, rank) depends on nothing else.

    The sample stream is a sequence of epochs, each a permutation seeded by
    (seed, epoch); global position p = ((step·accum + micro)·world + rank)·B + j.
    A resumed run therefore continues the uninterrupted run's data order.
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
