"""The text side of text alignment: a frozen token-embedding table and a stream of token ids.

Embedding sources (``TokenizerConfig.text_embedding``):

- ``"gpt2"``: GPT-2's ``wte`` via ``transformers`` (what NeuroLM uses; needs the HF cache
  or network). Imported lazily so encoding EEG never needs transformers.
- ``"random:<vocab>x<dim>"``: a fixed-seed N(0, 0.1²) table, for offline tests and demos.
- ``"<path>.safetensors"``: a table saved earlier (key ``wte.weight`` or the only tensor), so
  air-gapped clusters can copy GPT-2's embeddings once.

Token ids: NeuroLM feeds random 1024-token windows of OpenWebText (GPT-2 tokens, nanoGPT's
``train.bin``). :class:`TextTokenSource` reads such a ``uint16`` token file when given one,
and then matches the original. Without one it draws ids uniformly from the vocabulary: a
documented deviation (docs/DEVIATIONS.md), kept because OpenWebText (~17 GB of tokens) cannot
ship with the project or be fetched offline. Uniform ids weight rare tokens like common ones,
so the classifier sees a different text-embedding distribution than with real text; runs
record which source they used (``lineage["text_tokens"]``) and warn with ``gpt2`` embeddings.
Either way batch *k* depends only on (seed, k), so a resumed run sees the same text.
"""

from __future__ import annotations

import os
import re

import numpy as np
import torch

from neurolm.errors import ConfigError

_RANDOM = re.compile(r"^random:(\d+)x(\d+)$")


def load_text_embedding(spec: str) -> torch.Tensor:
    """The frozen [vocab, dim] float32 table named by ``spec``; ConfigError when unavailable."""
    m = _RANDOM.match(spec)
    if m:
        g = torch.Generator().manual_seed(0)
        return torch.randn(int(m.group(1)), int(m.group(2)), generator=g) * 0.1
    if spec.endswith(".safetensors"):
        from safetensors.torch import load_file

        if not os.path.exists(spec):
            raise ConfigError(f"text embedding file {spec} does not exist")
        tensors = load_file(spec)
        if "wte.weight" in tensors:
            return tensors["wte.weight"].float()
        if len(tensors) == 1:
            return next(iter(tensors.values())).float()
        raise ConfigError(f"{spec}: expected a tensor named 'wte.weight' or a single tensor")
    if spec == "gpt2":
        try:
            from transformers import GPT2LMHeadModel

            model = GPT2LMHeadModel.from_pretrained("gpt2")
        except Exception as exc:  # offline, no cache, no transformers: all mean "not available here"
            raise ConfigError(
                "text_embedding='gpt2' needs GPT-2 weights from the Hugging Face cache or network "
                f"({type(exc).__name__}: {exc}); save them once with "
                "`neurolm.tokenizer.text.save_text_embedding` and pass the .safetensors path") from exc
        return model.transformer.wte.weight.detach().float().clone()
    raise ConfigError(f"unknown text embedding source {spec!r}")


def save_text_embedding(table: torch.Tensor, path: str) -> None:
    """Write a table as ``wte.weight`` in a safetensors file (for offline use)."""
    from safetensors.torch import save_file

    save_file({"wte.weight": table.contiguous()}, path)


class TextTokenSource:
    """Deterministic batches of text token ids [B, T], a function of (seed, step) only."""

    def __init__(self, vocab_size: int, seed: int = 0, token_file: str | None = None):
        self.vocab_size, self.seed = vocab_size, seed
        self.tokens = None
        if token_file is not None:
            if not os.path.exists(token_file):
                raise ConfigError(f"text token file {token_file} does not exist")
            self.tokens = np.memmap(token_file, dtype=np.uint16, mode="r")

    def describe(self) -> str:
        """Which text the ids come from, for run lineage."""
        if self.tokens is None:
            return f"uniform:{self.vocab_size}"
        return f"file:{os.path.abspath(self.tokens.filename)}:{len(self.tokens)}"

    def batch(self, step: int, batch_size: int, seq_len: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, 7919, step])
        if self.tokens is None or len(self.tokens) <= seq_len:
            ids = rng.integers(0, self.vocab_size, size=(batch_size, seq_len))
        else:
            starts = rng.integers(0, len(self.tokens) - seq_len, size=batch_size)
            ids = np.stack([np.asarray(self.tokens[s: s + seq_len]) for s in starts])
            ids = np.minimum(ids, self.vocab_size - 1)
        return torch.from_numpy(ids.astype(np.int64))
