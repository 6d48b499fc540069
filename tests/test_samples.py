"""The one NeuroLM sample rule (neurolm.samples) against the reference numbers (NEUROLM_REFERENCE §1.3)."""

from neurolm.samples import MAX_TOKENS, PAD_CHANNEL, TIME_ROWS, sample_seconds
from neurolm.vocab import PAD_INDEX, VOCAB


def test_sample_rule_follows_neurolm_windows():
    # floor(1024 / n_ch) seconds: 19 ch -> 53 s, 23 ch -> 44 s, 32 ch -> 32 s (prepare_TUH_pretrain.py)
    assert sample_seconds(19) == 53 and sample_seconds(23) == 44 and sample_seconds(32) == 32
    assert sample_seconds(8) == 64  # capped by the 64-row time embedding
    assert sample_seconds(139) == 7 and sample_seconds(1024) == 1 and sample_seconds(2000) == 1  # never 0 s


def test_sample_rule_takes_a_smaller_model():
    # the `tiny` tokenizer (256 tokens, 64 time rows) cuts a 64-s, 16-channel window into 16-s samples
    assert sample_seconds(16, max_tokens=256) == 16 and sample_seconds(16) == 64
    assert sample_seconds(4, max_tokens=256, time_rows=8) == 8


def test_pad_channel_is_the_vocabulary_pad():
    assert VOCAB[PAD_CHANNEL] == "pad" and PAD_CHANNEL == PAD_INDEX
    assert MAX_TOKENS == 1024 and TIME_ROWS == 64
