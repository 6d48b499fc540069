"""NeuroLM's text-aligned VQ neural tokenizer (stage 1): model, samples, training, weight import.

Public entry points::

    cfg = preset("tiny")                                  # or "base"
    model = VQTokenizer(cfg)
    tok = load_tokenizer("runs/vq", device="cpu")         # run dir, checkpoint dir or weights file
    codes = tok.encode_codes(x, ch, time, mask)           # [B, L] long, -1 at padding
    sample = build_sample(signal, ch_indices)             # time-major, padded to 1024 tokens
"""

from neurolm.tokenizer.config import TokenizerConfig, TrainConfig, preset, train_preset
from neurolm.tokenizer.data import build_sample
from neurolm.tokenizer.vq import VQTokenizer
from neurolm.tokenizer.weights import import_published, load_tokenizer

__all__ = ["TokenizerConfig", "TrainConfig", "VQTokenizer", "build_sample", "import_published",
           "load_tokenizer", "preset", "train_preset"]
