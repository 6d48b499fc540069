"""NeuroLM's sample geometry: the constants and the one window rule (reference §1.1, §1.3).

A NeuroLM *sample* holds every channel of one recording for ``n_sec`` seconds,
cut into 1-s patches of ``PATCH`` samples at ``SFREQ`` Hz, laid out time-major
and padded to ``MAX_TOKENS`` tokens (pad channel ``PAD_CHANNEL``, time 0).
``n_sec = floor(MAX_TOKENS / n_ch)`` (``prepare_TUH_pretrain.py``), capped at
``TIME_ROWS`` because the tokenizer's temporal embedding has that many rows
(NeuroLM would index past it below 16 channels; docs/DEVIATIONS.md).

Every user (ingest windows, signal-store chunks, tokenizer data, corpus
planning) imports this module, so the rule exists once. It imports nothing
from the project, so ``storage/`` may import it too.
"""

from __future__ import annotations

SFREQ = 200  # Hz: the store's and the model's sampling rate
PATCH = 200  # samples per patch token (1 s at SFREQ)
MAX_TOKENS = 1024  # patch tokens per sample (the padded length)
TIME_ROWS = 64  # rows of the temporal embedding: the most seconds a sample may span
CHANNEL_ROWS = 256  # rows of the channel (position) embedding
PAD_CHANNEL = 136  # vocabulary index of ``pad`` (neurolm.vocab.PAD_INDEX)


def sample_seconds(n_ch: int, max_tokens: int = MAX_TOKENS, time_rows: int = TIME_ROWS) -> int:
    """Seconds per sample for ``n_ch`` channels: ``floor(max_tokens / n_ch)``, within ``[1, time_rows]``."""
    return max(1, min(int(max_tokens) // max(1, int(n_ch)), int(time_rows)))

