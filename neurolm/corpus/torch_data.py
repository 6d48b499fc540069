"""PyTorch dataset wrappers over :class:`~neurolm.corpus.reader.TokenCorpus`.

Why two wrappers: a map-style ``TokenDataset`` gives exact random access (any
sampler, reproducible epochs) at the price of touching random shards; the
iterable ``TokenIterableDataset`` streams shard by shard with block shuffling,
splitting shards across DataLoader workers, which is what large-scale training
wants. Both yield int64 tensors; batch them with ``collate_tokens``.
The corpus is opened lazily in each worker process (no open file handles or
caches cross a fork).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from neurolm.corpus.reader import TokenCorpus, collate_tokens

__all__ = ["TokenDataset", "TokenIterableDataset", "collate_tokens"]


def _to_torch(sample: dict) -> dict[str, torch.Tensor]:
    # The reader returns fresh writable int64 arrays: zero-copy wrap.
    return {k: torch.from_numpy(v) for k, v in sample.items()}


class TokenDataset(Dataset):
    """Map-style: ``ds[i]`` → dict of int64 tensors ``codes``, ``ch``, ``time``."""

    def __init__(self, url: str, version: str | None = None, cache_shards: int = 8,
                 splits: tuple[str, ...] | None = None) -> None:
        self.url, self.version, self.cache_shards, self.splits = url, version, cache_shards, splits
        self._corpus: TokenCorpus | None = None
        self._len = len(self.corpus)

    @property
    def corpus(self) -> TokenCorpus:
        if self._corpus is None:
            self._corpus = TokenCorpus.open(self.url, version=self.version, cache_shards=self.cache_shards,
                                            splits=self.splits)
        return self._corpus

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_corpus"] = None  # reopen in the worker
        return state

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return _to_torch(self.corpus[i])


class TokenIterableDataset(IterableDataset):
    """Streaming: shards split across workers, block-shuffled per ``epoch`` when ``shuffle``."""

    def __init__(self, url: str, version: str | None = None, shuffle: bool = True, seed: int = 0,
                 splits: tuple[str, ...] | None = None) -> None:
        self.url, self.version, self.shuffle, self.seed, self.splits = url, version, shuffle, seed, splits
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
        corpus = TokenCorpus.open(self.url, version=self.version, cache_shards=2, splits=self.splits)
        for s in corpus.iter_samples(shuffle=self.shuffle, seed=self.seed + self.epoch, worker=wid, n_workers=nw):
            yield _to_torch(s)
