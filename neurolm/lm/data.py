"""EEG batches for stage 2 from the materialised token corpus (``codes`` input mode).

What is checked before any training step (one clear error each):

- the corpus has a ``train`` and a ``val`` split (validation every epoch needs it);
- its codebook size equals the model's EEG logits, its tokenizer config hash equals the
  model's tokenizer (codes of another tokenizer mean other things), its channel vocabulary
  is this code's (channel embedding rows);
- the tokenizer checkpoint given for the codebook is the one the corpus was made with (sha256);
- ``heldout`` is never opened: the readers are restricted to ``train`` / ``val``.

Batches are ``collate_tokens`` batches (codes, ch, time, mask [B, L]) whose ``targets`` are
recomputed with :func:`neurolm.lm.targets.next_second_codes` (keyed by channel). Batch order
depends only on (seed, epoch), so a resumed run sees the same data.

``features`` mode needs the raw patches too: :class:`SignalPatches` reads each corpus sample's
signal from the signal-store version the corpus was made from (its lineage names it) and
checks that the channels and seconds line up with the corpus tokens. Batches then also carry
``x`` [B, L, 200]. Such batches use random access in a seeded permutation (``access="index"``);
use the same access for a ``codes`` run that is to be compared with a ``features`` run, so both
see the same samples in the same order.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from neurolm.corpus.reader import TokenCorpus, collate_tokens
from neurolm.errors import ConfigError, StoreError
from neurolm.lm.config import LMConfig
from neurolm.lm.targets import next_second_codes
from neurolm.samples import MAX_TOKENS, PATCH
from neurolm.vocab import VOCAB_VERSION
from neurolm.tokenizer.data import build_sample
from neurolm.tokenizer.weights import load_tokenizer
from storage import checkpoints
from storage.signal_store import SignalStore

TRAIN_SPLITS = ("train",)
VAL_SPLITS = ("val",)
_SYNTHETIC = "synthetic"  # lineage fields of synthetic corpora (neurolm.corpus.synthetic): nothing to compare


def identity(lineage: dict[str, Any]) -> dict[str, Any]:
    """The identity fields of a corpus ``lineage.json`` (``CorpusLineage.to_json`` nests them)."""
    return lineage.get("identity", lineage) or {}


def check_corpus(lineage: dict[str, Any], splits: set[str], cfg: LMConfig) -> None:
    """ConfigError when the corpus cannot feed a model with ``cfg``."""
    if "train" not in splits or "val" not in splits:
        raise ConfigError(f"the corpus needs train and val splits; it has {sorted(splits)}")
    info = lineage.get("info", {}) or {}
    n = info.get("codebook_size")
    if n is not None and int(n) != cfg.codebook_size:
        raise ConfigError(f"corpus codebook has {n} codes but the model has {cfg.codebook_size} EEG logits")
    ident = identity(lineage)
    vv = ident.get("vocab_version")
    if vv not in (None, _SYNTHETIC) and vv != VOCAB_VERSION:
        raise ConfigError(f"corpus uses channel vocabulary {vv!r}, this code {VOCAB_VERSION!r}: channel "
                          "indices would mean other electrodes")
    h = ident.get("tokenizer_config_hash")
    if h not in (None, _SYNTHETIC) and h != cfg.tokenizer.config_hash():
        raise ConfigError(f"corpus was tokenized with tokenizer config {h}, the model expects "
                          f"{cfg.tokenizer.config_hash()}")


def open_corpus(url: str, cfg: LMConfig, version: str | None = None) -> tuple[TokenCorpus, TokenCorpus]:
    """(train, val) readers of a complete corpus version, after :func:`check_corpus`."""
    probe = TokenCorpus.open(url, version=version, splits=("train", "val"))
    check_corpus(probe.lineage, set(probe.manifest["split"]), cfg)
    ver = probe.version_id
    return (TokenCorpus.open(url, version=ver, splits=TRAIN_SPLITS),
            TokenCorpus.open(url, version=ver, splits=VAL_SPLITS))


def load_corpus_tokenizer(path: str, lineage: dict[str, Any] | None = None):
    """The tokenizer (eval mode) of checkpoint ``path``; ConfigError when it is not the corpus's (sha256)."""

    ckpt, sha = checkpoints.resolve(path)
    want = identity(lineage or {}).get("tokenizer_sha256")
    if want not in (None, _SYNTHETIC) and want != sha:
        raise ConfigError(f"tokenizer {ckpt} (sha256 {sha[:12]}) is not the one the corpus was made with "
                          f"({str(want)[:12]})")
    return load_tokenizer(ckpt)


def tokenizer_codebook(path: str, lineage: dict[str, Any] | None = None):
    """(TokenizerConfig, codebook [K, code_dim]) of a tokenizer checkpoint; it must be the corpus's."""
    tok = load_corpus_tokenizer(path, lineage)
    return tok.config, tok.VQ.quantize.embedding.weight.detach().clone()


def attach_tokenizer(model, path: str, lineage: dict[str, Any] | None = None) -> None:
    """Give ``model`` its tokenizer parts: the codebook (codes mode) or the frozen encoder (features mode)."""
    tok = load_corpus_tokenizer(path, lineage)
    if tok.config.config_hash() != model.config.tokenizer.config_hash():
        raise ConfigError(f"tokenizer {path} has config {tok.config.config_hash()}, the model expects "
                          f"{model.config.tokenizer.config_hash()}")
    if model.config.input_mode == "codes":
        model.set_codebook(tok.VQ.quantize.embedding.weight.detach())
    else:
        model.tokenizer.load_state_dict(tok.VQ.encoder.state_dict())


class SignalPatches:
    """The 200-sample patches of corpus samples, from the signal store named in the corpus lineage."""

    def __init__(self, lineage: dict[str, Any], store_url: str | None = None, patch_size: int = PATCH) -> None:
        info = lineage.get("info", {}) or {}
        url = store_url or info.get("store_url")
        version = identity(lineage).get("store_version")
        if not url or not version or version == _SYNTHETIC:
            raise ConfigError("features mode needs the corpus's signal store: its lineage names none (pass store_url)")
        self.store = SignalStore.open(url, version=version)  # StoreError when that version is gone
        self.patch_size = int(patch_size)

    def sample(self, row: Any, codes_ch: torch.Tensor, codes_time: torch.Tensor, max_len: int) -> torch.Tensor:
        """x [max_len, 200] of the manifest ``row``; StoreError when it does not match the corpus tokens."""

        meta = self.store.recording_meta(str(row["recording_id"]))
        ch_idx = [int(c) for c in meta["ch_indices"]]
        n_sec = int(row["n_tokens"]) // max(1, len(ch_idx))
        start = int(row["window_start"])
        sig = self.store.read_signal(str(row["recording_id"]), start, start + n_sec * self.patch_size)
        s = build_sample(sig, ch_idx, max_tokens=max_len, patch_size=self.patch_size)
        n = len(codes_ch)
        lined_up = torch.equal(s["ch"][:n], codes_ch) and torch.equal(s["time"][:n], codes_time)
        if int(s["mask"].sum()) != n or not lined_up:
            raise StoreError(f"signal of {row['recording_id']}@{start} does not line up with its corpus tokens")
        return s["x"]


class EEGBatches:
    """Batches of one split: ``epoch(e)`` yields dicts of [B, max_len] tensors (see module doc).

    ``access="stream"`` reads shard by shard with block shuffling (fast at scale);
    ``"index"`` visits a seeded permutation of the samples by random access (required with
    ``signals``, i.e. for ``features`` mode).
    """

    def __init__(self, corpus: TokenCorpus, batch_size: int, max_len: int = MAX_TOKENS, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = True, access: str = "stream",
                 signals: SignalPatches | None = None) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be ≥ 1")
        if len(corpus) == 0:
            raise StoreError(f"corpus {corpus.version_id} has no samples in the selected split")
        if access not in ("stream", "index"):
            raise ConfigError(f"access must be 'stream' or 'index', not {access!r}")
        if signals is not None:
            access = "index"
        self.corpus, self.batch_size, self.max_len = corpus, int(batch_size), int(max_len)
        self.seed, self.shuffle, self.drop_last = int(seed), bool(shuffle), bool(drop_last)
        self.access, self.signals = access, signals

    def __len__(self) -> int:
        n = len(self.corpus)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int) -> list[int]:
        """Selected-sample indices in the order ``access="index"`` visits them in ``epoch``."""
        import numpy as np

        n = len(self.corpus)
        if not self.shuffle:
            return list(range(n))
        return np.random.default_rng([self.seed, int(epoch)]).permutation(n).tolist()

    def _indexed(self, epoch: int, skip: int = 0) -> Iterator[dict]:
        man = self.corpus.manifest
        for i in self.order(epoch)[skip:]:
            s = self.corpus[i]
            if self.signals is not None:
                row = man.iloc[self.corpus.locate(i)[2]]
                s["x"] = self.signals.sample(row, torch.from_numpy(s["ch"]), torch.from_numpy(s["time"]),
                                             self.max_len)
            yield s

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of ``epoch`` from batch ``start`` on (a resumed run: the skipped ones are not collated,
        and with ``access="index"`` not even read)."""
        import itertools

        buf: list[dict] = []
        skip = int(start) * self.batch_size
        source = (self._indexed(epoch, skip) if self.access == "index"
                  else itertools.islice(self.corpus.iter_samples(shuffle=self.shuffle, seed=self.seed + int(epoch)),
                                        skip, None))
        for s in source:
            buf.append(s)
            if len(buf) == self.batch_size:
                yield self.collate(buf)
                buf = []
        if buf and not self.drop_last:
            yield self.collate(buf)

    def collate(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        b = collate_tokens([{k: s[k] for k in ("codes", "ch", "time")} for s in samples], max_len=self.max_len)
        b["targets"] = next_second_codes(b["codes"], b["ch"], b["time"], b["mask"])
        if samples and "x" in samples[0]:
            b["x"] = torch.stack([s["x"] for s in samples])
        return b
