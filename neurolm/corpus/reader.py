"""Reading a materialised token corpus for LLM training.

Why shard-level caching: a shard (a few hundred to a few thousand samples, a
few MB) is read with one zarr read per array and kept in memory in its stored
narrow dtypes, so a sample is three slices and three small int64 casts. That is what makes ≥ 10 k samples/s on one
core possible; a per-sample zarr read (or NeuroLM's pickle per sample) pays
file-open and decode costs for every sample.

What a sample is (NEUROLM_REFERENCE §1.1, §3.2-3.3): the valid (unpadded)
tokens of one NeuroLM window in time-major order — all channels of second 0,
then second 1, ... ``codes[i]`` is the VQ code (0 ≤ k < codebook size),
``ch[i]`` the vocabulary index of its channel, ``time[i]`` its second. The LLM
target of token ``i`` is ``codes[i + n_ch]`` (the same channel one second later;
:func:`next_second_targets`). Mapping code ``k`` to LLM id ``50304 + k`` (and
adding the [SEP] token 50257) is the model's business, not the corpus's: the
corpus stores raw codes so one corpus serves any vocabulary layout.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator

import numpy as np

from neurolm.errors import StoreError
from neurolm.samples import MAX_TOKENS
from neurolm.vocab import PAD_INDEX
from storage.token_corpus import CorpusVersion, ShardArrays, TokenCorpusStore
from storage import fs

LLM_EEG_OFFSET = 50304  # NeuroLM: EEG code k is LLM output logit 50304 + k (reference §3.1)


class TokenCorpus:
    """Random access and streaming over one complete corpus version.

    ``TokenCorpus.open(url)`` accepts a corpus root (opens its current version,
    or ``version=``) or a version directory ``ROOT/versions/c-...``.
    ``splits=("train",)`` restricts indexing and streaming to those splits
    (``manifest`` keeps every row; ``selected`` lists the chosen global samples).
    """

    def __init__(self, version: CorpusVersion, cache_shards: int = 8,
                 splits: tuple[str, ...] | None = None) -> None:
        self.version = version
        self.version_id = version.version_id
        self.status = version.status()
        man = version.manifest()
        self.manifest = man
        if splits:
            unknown = sorted(set(splits) - set(man["split"]))
            if unknown and len(unknown) == len(set(splits)):
                raise StoreError(f"corpus {version.version_id} has no samples of split(s) {unknown}")
            self._sel = man["split"].isin(list(splits)).to_numpy()
        else:
            self._sel = np.ones(len(man), dtype=bool)
        self.selected: np.ndarray = np.flatnonzero(self._sel)
        counts = man.groupby("shard", sort=True).size()
        self.shards: np.ndarray = counts.index.to_numpy(dtype=np.int64)
        # first global sample index of each shard (+ total at the end)
        self.starts = np.concatenate([[0], np.cumsum(counts.to_numpy(dtype=np.int64))])
        # token offset of every sample inside its shard, from the manifest (no shard read needed)
        ntok = man["n_tokens"].to_numpy(dtype=np.int64)
        cum = np.concatenate([[0], np.cumsum(ntok)])
        self._tok_start = cum[:-1] - np.repeat(cum[self.starts[:-1]], counts.to_numpy())
        self._ntok = ntok
        self.cache_shards = max(1, int(cache_shards))
        self._cache: OrderedDict[int, ShardArrays] = OrderedDict()
        self._handles: OrderedDict[int, dict] = OrderedDict()
        self._last_shard: int | None = None

    @classmethod
    def open(cls, url: str, version: str | None = None, cache_shards: int = 8,
             splits: tuple[str, ...] | list[str] | None = None) -> "TokenCorpus":
        url = fs.normalize_url(url)
        parent = url.rsplit("/", 2) if "://" in url else url.rstrip("/").rsplit("/", 2)
        if len(parent) == 3 and parent[1] == "versions" and parent[2].startswith("c-") and version is None:
            store = TokenCorpusStore.open(parent[0])
            return cls(store.resolve(parent[2]), cache_shards, tuple(splits or ()) or None)
        return cls(TokenCorpusStore.open(url).resolve(version), cache_shards, tuple(splits or ()) or None)

    # -- sizes ----------------------------------------------------------------
    def __len__(self) -> int:
        return int(len(self.selected))

    @property
    def n_tokens(self) -> int:
        return int(self._ntok[self.selected].sum())

    @property
    def lineage(self) -> dict[str, Any]:
        return self.version.lineage()

    @property
    def codebook_size(self) -> int | None:
        info = self.lineage.get("info", {})
        n = info.get("codebook_size")
        return int(n) if n is not None else None

    # -- shard cache ----------------------------------------------------------
    def shard(self, k: int) -> ShardArrays:
        """Shard ``k`` in its stored (narrow) dtypes, cached LRU; 4x less memory than int64."""
        hit = self._cache.get(k)
        if hit is not None:
            self._cache.move_to_end(k)
            return hit
        arrs = self.version.read_shard(k)
        for a in (arrs.codes, arrs.ch, arrs.time, arrs.offsets):
            a.setflags(write=False)
        self._cache[k] = arrs
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return arrs

    def _slice_read(self, k: int, i: int) -> dict[str, np.ndarray]:
        """One sample straight from zarr (one or two 64 Ki chunks per array), no shard load."""
        h = self._handles.get(k)
        if h is None:
            h = self._handles[k] = self.version.open_shard(k)
            while len(self._handles) > 64:
                self._handles.popitem(last=False)
        a = int(self._tok_start[i])
        b = a + int(self._ntok[i])
        return {n: h[n][a:b].astype(np.int64) for n in ("codes", "ch", "time")}

    def locate(self, i: int) -> tuple[int, int, int]:
        """(shard id, index within the shard, global sample id) of selected sample ``i``."""
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sample {i} out of range for a corpus of {n} samples")
        g = int(self.selected[i])
        pos = int(np.searchsorted(self.starts, g, side="right")) - 1
        return int(self.shards[pos]), g - int(self.starts[pos]), g

    @staticmethod
    def _sample(arrs: ShardArrays, j: int) -> dict[str, np.ndarray]:
        a, b = int(arrs.offsets[j]), int(arrs.offsets[j + 1])
        return {"codes": arrs.codes[a:b].astype(np.int64), "ch": arrs.ch[a:b].astype(np.int64),
                "time": arrs.time[a:b].astype(np.int64)}

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i``: fresh int64 numpy arrays ``codes``, ``ch``, ``time``.

        A cached shard serves it by slicing. On a miss, two accesses in a row to
        the same shard (sequential reading) load the whole shard; an isolated
        access (random sampling) reads just the sample's slice, because loading
        a ~1 M-token shard for one sample is ~100x the work.
        """
        k, j, g = self.locate(int(i))
        if k in self._cache or self._last_shard == k:
            self._last_shard = k
            return self._sample(self.shard(k), j)
        self._last_shard = k
        return self._slice_read(k, g)

    def iter_samples(self, shuffle: bool = False, seed: int = 0, worker: int = 0,
                     n_workers: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """Stream samples shard by shard (each shard read once).

        ``shuffle`` permutes the shard order and the samples within each shard
        (block shuffling: full random order would read a shard per sample).
        ``worker``/``n_workers`` give each DataLoader worker a disjoint subset of shards.
        """
        rng = np.random.default_rng(seed)
        order = np.arange(len(self.shards))
        if shuffle:
            rng.shuffle(order)
        for pos in order[worker::n_workers]:
            local = np.flatnonzero(self._sel[self.starts[pos]:self.starts[pos + 1]])
            if not len(local):
                continue
            k = int(self.shards[pos])
            arrs = self.shard(k)
            # one int64 conversion per shard; samples are disjoint views of it (writable, not cached)
            codes, ch, tm = (a.astype(np.int64) for a in (arrs.codes, arrs.ch, arrs.time))
            off = arrs.offsets.tolist()
            idx = local
            if shuffle:
                rng.shuffle(idx)
            for j in idx.tolist():
                a, b = off[j], off[j + 1]
                yield {"codes": codes[a:b], "ch": ch[a:b], "time": tm[a:b]}


def next_second_targets(codes: np.ndarray, time: np.ndarray) -> np.ndarray:
    """NeuroLM's stage-2 targets (reference §3.3): ``Y[i] = codes[i + n_ch]``, −1 where none.

    ``n_ch`` is the number of tokens of second 0 (time-major order).
    """
    n = len(codes)
    y = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return y
    n_ch = int(np.count_nonzero(time == time[0]))
    if n_ch < n:
        y[: n - n_ch] = codes[n_ch:]
    return y


def collate_tokens(batch: list[dict[str, Any]], max_len: int = MAX_TOKENS) -> dict[str, Any]:
    """Pad samples to ``max_len`` as torch tensors: codes, ch (pad 136), time (pad 0), mask, targets (−1).

    Filled in numpy and wrapped once: per-element torch indexing would cost more
    than reading the corpus.
    """
    import torch

    b = len(batch)
    codes = np.zeros((b, max_len), dtype=np.int64)
    ch = np.full((b, max_len), PAD_INDEX, dtype=np.int64)
    tm = np.zeros((b, max_len), dtype=np.int64)
    mask = np.zeros((b, max_len), dtype=bool)
    targets = np.full((b, max_len), -1, dtype=np.int64)
    for r, s in enumerate(batch):
        c, t = np.asarray(s["codes"]), np.asarray(s["time"])
        n = len(c)
        if n > max_len:
            raise StoreError(f"sample of {n} tokens exceeds max_len={max_len}")
        codes[r, :n] = c
        ch[r, :n] = np.asarray(s["ch"])
        tm[r, :n] = t
        mask[r, :n] = True
        if n:
            n_ch = int(np.count_nonzero(t == t[0]))
            targets[r, : n - n_ch] = c[n_ch:]
    return {k: torch.from_numpy(v) for k, v in
            (("codes", codes), ("ch", ch), ("time", tm), ("mask", mask), ("targets", targets))}
