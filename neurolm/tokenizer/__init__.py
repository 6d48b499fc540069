"""NeuroLM's text-aligned VQ neural tokenizer (stage 1): model, samples, training, weight import.

Public entry points::

    cfg = preset("tiny")                                  # or "base" (the paper's tokenizer)
    model = VQTokenizer(cfg)
    tok = load_tokenizer("runs/vq", device="cpu")         # run dir, checkpoint dir or weights file
    codes = tok.encode_codes(x, ch, time, mask)           # [B, L] long, -1 at padding
    sample = build_sample(signal, ch_indices)             # time-major, padded to 1024 tokens
    model, report = import_published("VQ.pt")             # the original checkpoint

Modules: ``config`` (presets, YAML), ``model`` (patch transformer), ``quantizer``
(normalised EMA VQ), ``vq`` (encoder → codes → two decoders + domain head), ``data``
(samples, targets, store dataset), ``text`` (frozen text embeddings), ``train`` (the loop,
on the shared plumbing of :mod:`neurolm.training`), ``metrics`` (codebook-health window),
``weights`` (loading, published import), ``params`` (the stage's parameters), ``run`` (the
stage: checked run setup, training, report, summary with ``outputs``), ``synthetic`` (rhythm
corpus for tests and demos).

Deliberate differences from the reference implementation (each documented where it lives):

- ``encoder_attention="causal-by-second"`` by default: no look-ahead across seconds, so
  stage-2 inputs do not leak the targets (reference §3.4). ``"full"`` reproduces the original.
- With ``causal-by-second`` the conv stem's GroupNorm takes its statistics from valid
  patches at seconds ≤ t (``conv_norm="valid-patches"``): the original's statistics span the
  whole sample *including padding*, a second, unreported leak that also makes codes depend
  on the amount of padding. With ``full`` attention (and for imported ``VQ.pt``) the default
  is the original's norm (``conv_norm="reference"``), so published weights give the
  original's features and codes (tests/test_tokenizer_reference.py).
- Projection to code space *and* the codebook lookup run in fp32 with autocast off (the
  original leaves the lookup under the training autocast).
- Padding is excluded from the codebook EMA, k-means init, commitment and reconstruction
  losses (the original averages zeros of padded positions into the losses).
- Dead codes can be re-seeded from recent encoder outputs (``TrainConfig.dead_code_every``).
- The frozen GPT-2 table is not stored in checkpoints (rebuilt from ``text_embedding``).
- TemporalConv pads (0, 7) as the original code does (the reference text says (1, 7)).
"""

from neurolm.tokenizer.config import TokenizerConfig, TrainConfig, preset, train_preset
from neurolm.tokenizer.data import build_sample
from neurolm.tokenizer.vq import VQTokenizer
from neurolm.tokenizer.weights import import_published, load_tokenizer

__all__ = ["TokenizerConfig", "TrainConfig", "VQTokenizer", "build_sample", "import_published",
           "load_tokenizer", "preset", "train_preset"]
