"""EEG batches for stage 2 from the materialised token corpus (``codes`` input mode).

What is checked before any training step (one clear error each):

- the corpus has a ``train`` and a ``val`` split (validation every epoch needs it);
- its codebook size equals the model's EEG logits, its tokenizer config hash equals the
  model's tokenizer (codes of another tokenizer mean other things);
- the tokenizer checkpoint given for the codebook is the one the corpus was made with (sha256);
- ``heldout`` is never opened: the readers are restricted to ``train`` / ``val``.

Batches are ``collate_tokens`` batches (codes, ch, time, mask [B, L]) whose ``targets`` are
recomputed with :func:`neurolm.lm.targets.next_second_codes` (keyed by channel). Batch order
depends only on (seed, epoch), so a resumed run sees the same data.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch

from neurolm.corpus.reader import TokenCorpus, collate_tokens
from neurolm.errors import ConfigError, StoreError
from neurolm.lm.config import LMConfig
from neurolm.lm.targets import next_second_codes

TRAIN_SPLITS = ("train",)
VAL_SPLITS = ("val",)
_SYNTHETIC = "synthetic"  # lineage fields of synthetic corpora (neurolm.corpus.synthetic): nothing to compare


def check_corpus(lineage: dict[str, Any], splits: set[str], cfg: LMConfig) -> None:
    """ConfigError when the corpus cannot feed a model with ``cfg``."""
    if "train" not in splits or "val" not in splits:
        raise ConfigError(f"the corpus needs train and val splits; it has {sorted(splits)}")
    info = lineage.get("info", {}) or {}
    n = info.get("codebook_size")
    if n is not None and int(n) != cfg.codebook_size:
        raise ConfigError(f"corpus codebook has {n} codes but the model has {cfg.codebook_size} EEG logits")
    h = lineage.get("tokenizer_config_hash")
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


def tokenizer_codebook(path: str, lineage: dict[str, Any] | None = None):
    """(TokenizerConfig, codebook [K, code_dim]) of a tokenizer checkpoint; it must be the corpus's."""
    from neurolm.corpus.tokenize import resolve_checkpoint
    from neurolm.tokenizer.weights import load_tokenizer

    ckpt, sha = resolve_checkpoint(path)
    want = (lineage or {}).get("tokenizer_sha256")
    if want not in (None, _SYNTHETIC) and want != sha:
        raise ConfigError(f"tokenizer {ckpt} (sha256 {sha[:12]}) is not the one the corpus was made with "
                          f"({str(want)[:12]})")
    tok = load_tokenizer(ckpt)
    return tok.config, tok.VQ.quantize.embedding.weight.detach().clone()


class EEGBatches:
    """Batches of one split: ``epoch(e)`` yields dicts of [B, max_len] tensors (see module doc)."""

    def __init__(self, corpus: TokenCorpus, batch_size: int, max_len: int = 1024, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = True) -> None:
        if batch_size < 1:
            raise ConfigError("batch_size must be ≥ 1")
        if len(corpus) == 0:
            raise StoreError(f"corpus {corpus.version_id} has no samples in the selected split")
        self.corpus, self.batch_size, self.max_len = corpus, int(batch_size), int(max_len)
        self.seed, self.shuffle, self.drop_last = int(seed), bool(shuffle), bool(drop_last)

    def __len__(self) -> int:
        n = len(self.corpus)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        buf: list[dict] = []
        for s in self.corpus.iter_samples(shuffle=self.shuffle, seed=self.seed + int(epoch)):
            buf.append(s)
            if len(buf) == self.batch_size:
                yield self.collate(buf)
                buf = []
        if buf and not self.drop_last:
            yield self.collate(buf)

    def collate(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        b = collate_tokens(samples, max_len=self.max_len)
        b["targets"] = next_second_codes(b["codes"], b["ch"], b["time"], b["mask"])
        return b
