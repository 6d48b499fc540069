"""Labeled token corpora: every LABELS row of a signal store as one tokenized sample (issue 13, item 1).

Why: instruction tuning and evaluation (``neurolm.instruct``) should never open
the signal store or run the tokenizer. ``neurolm tokenize --labeled`` writes
an ordinary token-corpus version (same shards, commit markers, resumability;
read with ``TokenCorpus``) in which sample i is ONE labeled window: the
time-major tokens of every channel the window's recording holds (the dataset
adapter chose them at ingest: TUAB/TUEV/TUSL the 23 TUH channels, a file
missing one was quarantined; SEED 62, Workload 19, HMC 4), for
``length / 200`` seconds. Its manifest row (``LABELED_MANIFEST``) carries the
LABELS row: task, label, label_name, subject, split, window_start (= LABELS
``start``) and length. The lineage has ``kind: "labeled"`` and the tasks; a
different task selection is a different version.

Sizes are checked before any work: a window of more than ``EEG_MAX_LEN`` (276)
tokens, or more than the tokenizer takes in one sample (``max_tokens`` tokens,
``time_rows`` seconds), is an error that names the task and its size; nothing
is ever truncated. Rows that cannot be read (recording not in the store,
window longer than its recording, not whole seconds) are quarantined per row
with a reason (lineage ``info.quarantined_rows``) and the rest is tokenized.

``window_patches(corpus, i)`` reads the raw [n_tokens, 200] patches of sample i
back from the store named in the lineage, in the corpus's token order: the
``features`` path for models that embed raw patches (imported published weights).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np
import pandas as pd

from neurolm.corpus.encode import LabeledRef
from neurolm.corpus.tokenize import (ShardPlan, TokenizeJob, check_device, resolve_precision,
                                     resolve_tokenizer)
from neurolm.errors import ConfigError, StoreError
from neurolm.samples import PATCH
from storage import fs
from storage.signal_store import SignalStore
from storage.token_corpus import CorpusLineage, TokenCorpusStore

LABEL_SPLITS = ("test", "train", "val")
MAX_REPORTED = 200  # quarantined rows listed in the lineage (all are counted)


def select_tasks(labels: pd.DataFrame, tasks: Sequence[str] | None, where: str) -> tuple[str, ...]:
    """The LABELS task values to tokenize: all present, or ``tasks`` matched case-insensitively."""
    present = sorted(set(labels["task"].astype(str)))
    if not tasks:
        return tuple(present)
    lookup = {t.lower(): t for t in present}
    unknown = [t for t in tasks if t.lower() not in lookup]
    if unknown:
        raise ConfigError(f"task(s) {unknown} not in the LABELS table of {where}; it has {present}")
    return tuple(sorted({lookup[t.lower()] for t in tasks}))


def eeg_max_len() -> int:
    """NeuroLM's EEG part of an instruction sequence (``neurolm.instruct.tasks.EEG_MAX_LEN``, 276 tokens)."""
    from neurolm.instruct.tasks import EEG_MAX_LEN  # imported when used: it pulls in the LM package

    return EEG_MAX_LEN


def plan_labeled(labels: pd.DataFrame, recordings: pd.DataFrame, max_tokens: int, time_rows: int,
                 max_len: int | None = None) -> tuple[list[LabeledRef], list[dict[str, Any]]]:
    """One sample per LABELS row, sorted by (task, recording, start), and the rows quarantined with a reason.

    ConfigError (before any work) when windows exceed ``max_len`` tokens (default: EEG_MAX_LEN) or
    what the tokenizer takes.
    """
    max_len = eeg_max_len() if max_len is None else int(max_len)
    rec = recordings.drop_duplicates("recording_id").set_index("recording_id")
    lab = labels.sort_values(["task", "recording_id", "start"], kind="stable")
    refs: list[LabeledRef] = []
    skipped: list[dict[str, Any]] = []
    too_long: Counter = Counter()
    for r in lab.itertuples(index=False):
        rid, start, length = str(r.recording_id), int(r.start), int(r.length)

        def skip(reason: str) -> None:
            skipped.append({"task": str(r.task), "recording_id": rid, "start": start, "reason": reason})

        if rid not in rec.index:
            skip("recording not in the store's RECORDINGS table (quarantined or removed)")
            continue
        n_ch, n = int(rec.at[rid, "n_channels"]), int(rec.at[rid, "n_samples"])
        if length % PATCH:
            skip(f"window of {length} samples is not whole {PATCH}-sample (1-s) patches")
        elif length > n:
            skip(f"window of {length} samples is longer than its recording ({n} samples)")
        elif start >= n:
            skip(f"window starts at sample {start}, past the recording's end ({n} samples)")
        else:
            n_sec = length // PATCH
            if n_ch * n_sec > min(max_len, max_tokens) or n_sec > time_rows:
                too_long[(str(r.task), n_ch, n_sec)] += 1
                continue
            refs.append(LabeledRef(rid, start, n_sec, str(r.split), str(rec.at[rid, "dataset"]), length=length,
                                   task=str(r.task), label=int(r.label), label_name=str(r.label_name),
                                   subject=str(r.subject)))
    if too_long:
        sizes = "; ".join(f"{task}: {k} window(s) of {c} channels x {s} s = {c * s} tokens"
                          for (task, c, s), k in sorted(too_long.items()))
        raise ConfigError(f"labeled windows too long, refused (never truncated): {sizes}. A labeled sample "
                          f"holds at most {max_len} EEG tokens (NeuroLM's instruction sequences) and the "
                          f"tokenizer takes at most {max_tokens} tokens and {time_rows} s per sample; "
                          "choose other --tasks or re-ingest the dataset with fewer channels")
    return refs, skipped


def prepare_labeled_job(store_url: str, checkpoint: str, corpus_url: str, *, tasks: Sequence[str] | None = None,
                        shard_size: int = 1024, store_version: str | None = None, device: str = "cpu",
                        precision: str = "auto") -> TokenizeJob:
    """Check every input and plan the shards of a labeled corpus; ConfigError/StoreError before any work."""
    if not 1 <= int(shard_size) <= 65536:
        raise ConfigError(f"--shard-size must be between 1 and 65536 samples, not {shard_size}")
    device = check_device(device)
    precision = resolve_precision(device, precision)
    TokenCorpusStore.check_location(corpus_url)
    store = SignalStore.open(store_url, version=store_version)  # StoreError when missing
    where = f"store version {store.version_id} at {store.url}"
    labels = store.read_table("labels")
    if labels.empty:
        raise StoreError(f"{where} has no LABELS table (no labeled dataset ingested); "
                         "run neurolm ingest-dataset first")
    chosen = select_tasks(labels, tasks, where)
    ckpt, sha, cfg = resolve_tokenizer(store, checkpoint)
    labels = labels[labels["task"].isin(chosen)]
    refs, skipped = plan_labeled(labels, store.read_table("recordings"), cfg.max_tokens, cfg.time_rows)
    if not refs:
        raise StoreError(f"no labeled window of tasks {list(chosen)} in {where} can be tokenized "
                         f"({len(skipped)} quarantined; first: {skipped[0]['reason'] if skipped else '-'})")
    lineage = CorpusLineage(
        store_version=store.version_id, store_content=store.content_hash(tables=["recordings", "labels"]),
        vocab_version=store.vocab_version, tokenizer_sha256=sha, tokenizer_config_hash=cfg.config_hash(),
        datasets=None, splits=LABEL_SPLITS, shard_size=int(shard_size), precision=precision,
        kind="labeled", tasks=chosen,
        info={"store_url": store.url, "checkpoint": ckpt, "codebook_size": cfg.codebook_size,
              "tokenizer_config": cfg.model_dump(), "max_tokens": cfg.max_tokens, "time_rows": cfg.time_rows,
              "llm_eeg_offset": 50304, "eeg_max_len": eeg_max_len(), "tasks": list(chosen),
              "n_quarantined_rows": len(skipped), "quarantined_rows": skipped[:MAX_REPORTED]})
    vid = lineage.version_id()
    plans = tuple(ShardPlan(vid, k, tuple(refs[i:i + shard_size]))
                  for k, i in enumerate(range(0, len(refs), shard_size)))
    return TokenizeJob(store.url, store.version_id, ckpt, fs.normalize_url(corpus_url), lineage, plans,
                       cfg.codebook_size, precision)


def window_patches(corpus, i: int, store: SignalStore | None = None) -> np.ndarray:
    """float32 [n_tokens, 200] raw patches (model units) of selected sample ``i`` of ``corpus``, in the
    same time-major order as ``corpus[i]`` (all channels of second 0, then second 1, ...).

    Read from ``store`` or the signal store (URL and version) the corpus lineage names. Works for
    labeled corpora (the window ``[window_start, window_start + length)``, wrapping like
    `read_label_window`) and pretraining corpora (``n_tokens / n_ch`` seconds from ``window_start``).
    """
    from neurolm.datasets.windows import read_label_window

    lineage = corpus.lineage
    _, _, g = corpus.locate(int(i))
    row = corpus.manifest.iloc[g]
    if store is None:
        store = SignalStore.open(lineage["info"]["store_url"], version=lineage["identity"]["store_version"])
    n_ch = len(store.recording_meta(str(row["recording_id"]))["ch_indices"])
    n_tok = int(row["n_tokens"])
    if n_tok % n_ch:
        raise StoreError(f"sample {i}: {n_tok} tokens are not whole seconds of {n_ch} channels")
    n_sec = n_tok // n_ch
    length = int(row["length"]) if "length" in row.index else n_sec * PATCH
    sig = read_label_window(store, {"recording_id": str(row["recording_id"]), "start": int(row["window_start"]),
                                    "length": length})[:, : n_sec * PATCH]
    if sig.shape[1] != n_sec * PATCH:
        raise StoreError(f"sample {i}: the store holds {sig.shape[1]} samples of its window, not {n_sec * PATCH}")
    return np.ascontiguousarray(sig.reshape(n_ch, n_sec, PATCH).transpose(1, 0, 2).reshape(n_tok, PATCH))
