"""Materialising a token corpus: plan shards, run the frozen tokenizer, commit shards.

Three steps, all pure library code (the Prefect flow in ``flows/tokenize_corpus.py``
only schedules them):

1. :func:`prepare_job` resolves and checks every input BEFORE any work (store,
   windows, checkpoint integrity, vocabulary compatibility, selection) and
   plans the shards. The plan is a pure function of the store's windows table,
   the selection, the tokenizer geometry and the shard size, sorted by
   (recording_id, start), so a rerun re-derives the same shards and resumes.
2. :func:`tokenize_shard` (one writer per shard) reads the shard's windows,
   builds time-major samples, encodes them with the frozen tokenizer and
   commits the shard. Idempotent: a committed shard is skipped.
3. :func:`finalize_job` writes the manifest and marks the version complete.

Window → sample: a store window is a NeuroLM sample (floor(1024/n_ch) s). A
tokenizer whose context is smaller (the ``tiny`` preset: 256 tokens) or whose
time embedding is shorter than the window (< 16 channels with 64 time rows)
cannot take it whole, so the window is cut into consecutive sub-samples of
``neurolm.samples.sample_seconds(n_ch, max_tokens, time_rows)`` seconds (remainder dropped,
as NeuroLM drops the remainder of a recording). With the base tokenizer and
≥ 16 channels a window is exactly one sample.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from neurolm.corpus.encode import SampleRef, encode_samples
from neurolm.errors import ConfigError, StoreError
from neurolm.samples import PATCH, sample_seconds
from neurolm.vocab import VOCAB_VERSION
from storage import checkpoints, fs
from storage.token_corpus import CorpusLineage, TokenCorpusStore
from neurolm.tokenizer import load_tokenizer
from storage.signal_store import SignalStore

SPLITS = ("train", "val", "test", "heldout")
# Held-out subjects (e.g. TUAB/TUEV test subjects registered in the store) stay out of a
# pretraining corpus unless asked for by name (NeuroLM#5: TUEG pretraining leaked them).
DEFAULT_SPLITS = ("test", "train", "val")

# One tokenizer per (checkpoint, device) per process: Dask workers take many shards.
_TOKENIZERS: dict[tuple[str, str], Any] = {}
_TOK_LOCK = threading.Lock()


@dataclass(frozen=True)
class ShardPlan:
    """The work of one shard: which samples, in which order, into which version."""

    version_id: str
    shard: int
    samples: tuple[SampleRef, ...]


@dataclass(frozen=True)
class TokenizeJob:
    """Everything a run needs, resolved and checked. Small and picklable (sent to workers)."""

    store_url: str
    store_version: str
    checkpoint: str          # one concrete checkpoint (dir or weights file), not a run dir
    corpus_url: str
    lineage: CorpusLineage
    plans: tuple[ShardPlan, ...]
    codebook_size: int
    precision: str

    @property
    def version_id(self) -> str:
        return self.lineage.version_id()

    @property
    def n_samples(self) -> int:
        return sum(len(p.samples) for p in self.plans)


def resolve_precision(device: str, precision: str = "auto") -> str:
    """fp32 on CPU (bit-stable, what tests compare against), bf16 autocast on CUDA."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"precision must be auto, fp32 or bf16, not {precision!r}")
    if precision == "auto":
        return "bf16" if str(device).startswith("cuda") else "fp32"
    return precision


def check_device(device: str) -> str:
    import torch

    if device == "cpu":
        return device
    if not str(device).startswith("cuda"):
        raise ConfigError(f"device must be cpu or cuda[:N], not {device!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available on this machine")
    return device


def _checkpoint_lineage(ckpt: str) -> dict[str, Any]:
    url = fs.join(ckpt, "lineage.json")
    if fs.isdir(ckpt) and fs.exists(url):
        return fs.read_json(url)
    return {}


def get_tokenizer(ckpt: str, device: str = "cpu"):
    """The frozen tokenizer for ``ckpt`` on ``device``, loaded once per process."""

    key = (ckpt, str(device))
    with _TOK_LOCK:
        tok = _TOKENIZERS.get(key)
        if tok is None:
            tok = load_tokenizer(ckpt, device=device)
            for p in tok.parameters():
                p.requires_grad_(False)
            _TOKENIZERS[key] = tok
        return tok


def resolve_tokenizer(store: SignalStore, checkpoint: str) -> tuple[str, str, Any]:
    """(concrete checkpoint, its sha256, tokenizer config); ConfigError/StoreError when unusable for ``store``."""
    with warnings.catch_warnings():  # a corrupt checkpoint is reported by the StoreError when none is usable
        warnings.simplefilter("ignore")
        ckpt, sha = checkpoints.resolve(checkpoint)  # a run directory: its newest good checkpoint, pinned
    tok = get_tokenizer(ckpt, "cpu")  # full load: catches undecodable weights, gives the config
    tok_vocab = _checkpoint_lineage(ckpt).get("vocab_version") or VOCAB_VERSION
    if tok_vocab != store.vocab_version:
        raise ConfigError(f"vocabulary mismatch: store {store.url} uses {store.vocab_version!r} but tokenizer "
                          f"{ckpt} was trained with {tok_vocab!r}; channel indices would mean other electrodes")
    return ckpt, sha, tok.config


def plan_samples(windows, recordings, max_tokens: int, time_rows: int) -> list[SampleRef]:
    """Windows (sorted by recording, start) expanded into samples the tokenizer can take.

    Vectorised: a 25,000-hour store has ~2 M windows and planning must stay seconds.
    """
    rec = recordings.drop_duplicates("recording_id").set_index("recording_id")
    w = windows.sort_values(["recording_id", "start"], kind="stable")
    rid = w["recording_id"].astype(str).to_numpy()
    n_ch = rec["n_channels"].reindex(rid).to_numpy(dtype=np.int64)
    dataset = rec["dataset"].reindex(rid).astype(str).to_numpy()
    win_sec = w["length"].to_numpy(dtype=np.int64) // PATCH
    counts, inverse = np.unique(n_ch, return_inverse=True)  # the rule once per channel count, not per window
    n_sec = np.array([sample_seconds(int(c), max_tokens, time_rows) for c in counts], dtype=np.int64)[inverse]
    n_sec = np.minimum(n_sec, win_sec)
    count = np.where(n_sec > 0, win_sec // np.maximum(n_sec, 1), 0)
    starts = w["start"].to_numpy(dtype=np.int64)
    split = w["split"].astype(str).to_numpy()
    out: list[SampleRef] = []
    for i in np.flatnonzero(count):
        step = int(n_sec[i]) * PATCH
        r, s0, ns, sp, ds = str(rid[i]), int(starts[i]), int(n_sec[i]), str(split[i]), str(dataset[i])
        out.extend(SampleRef(r, s0 + j * step, ns, sp, ds) for j in range(int(count[i])))
    return out


def prepare_job(store_url: str, checkpoint: str, corpus_url: str, *, datasets: Sequence[str] | None = None,
                splits: Sequence[str] | None = None, shard_size: int = 1024, store_version: str | None = None,
                device: str = "cpu", precision: str = "auto") -> TokenizeJob:
    """Check every input and plan the shards; raises ConfigError/StoreError before any work."""

    if not 1 <= int(shard_size) <= 65536:
        raise ConfigError(f"--shard-size must be between 1 and 65536 samples, not {shard_size}")
    splits = tuple(sorted(set(splits))) if splits else DEFAULT_SPLITS
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise ConfigError(f"unknown split(s) {bad}; choose from {list(SPLITS)}")
    datasets = tuple(sorted(set(datasets))) if datasets else None
    device = check_device(device)
    precision = resolve_precision(device, precision)
    TokenCorpusStore.check_location(corpus_url)
    store = SignalStore.open(store_url, version=store_version)  # StoreError when missing
    ckpt, sha, cfg = resolve_tokenizer(store, checkpoint)
    windows = store.read_table("windows")
    if windows.empty:
        raise StoreError(f"store version {store.version_id} at {store.url} has no windows; run neurolm ingest first")
    recordings = store.read_table("recordings")
    known = set(recordings["recording_id"])
    windows = windows[windows["recording_id"].isin(known)]
    rec_ds = recordings.set_index("recording_id")["dataset"]
    if datasets:
        have = sorted(set(recordings["dataset"]))
        missing = [d for d in datasets if d not in have]
        if missing:
            raise ConfigError(f"dataset(s) {missing} not in store version {store.version_id}; it has {have}")
        windows = windows[windows["recording_id"].map(rec_ds).isin(datasets)]
    windows = windows[windows["split"].isin(splits)]
    samples = plan_samples(windows, recordings, cfg.max_tokens, cfg.time_rows)
    if not samples:
        raise StoreError(f"no windows of store version {store.version_id} match datasets={datasets} splits={splits}")
    content = store.content_hash(tables=["recordings", "windows"])
    lineage = CorpusLineage(
        store_version=store.version_id, store_content=content, vocab_version=store.vocab_version,
        tokenizer_sha256=sha, tokenizer_config_hash=cfg.config_hash(), datasets=datasets, splits=splits,
        shard_size=int(shard_size), precision=precision,
        info={"store_url": store.url, "checkpoint": ckpt, "codebook_size": cfg.codebook_size,
              "tokenizer_config": cfg.model_dump(), "max_tokens": cfg.max_tokens, "time_rows": cfg.time_rows,
              "llm_eeg_offset": 50304})
    vid = lineage.version_id()
    plans = tuple(ShardPlan(vid, k, tuple(samples[i:i + shard_size]))
                  for k, i in enumerate(range(0, len(samples), shard_size)))
    return TokenizeJob(store.url, store.version_id, ckpt, fs.normalize_url(corpus_url), lineage, plans,
                       cfg.codebook_size, precision)


def begin_job(job: TokenizeJob) -> list[int]:
    """Create the corpus root and version, record lineage; return the shards still to do."""
    root = TokenCorpusStore.open(job.corpus_url, create=True)
    v = root.version(job.version_id)
    v.ensure_lineage(job.lineage)
    if v.is_complete():
        return []
    v.mark_writing(len(job.plans), job.n_samples)
    todo = [p.shard for p in job.plans if not v.is_committed(p.shard)]
    v.discard_uncommitted(todo)
    return todo


def tokenize_shard(plan: ShardPlan, store_url: str, ckpt: str, corpus_url: str, device: str = "cpu",
                   batch_size: int = 16, store_version: str | None = None, precision: str = "auto",
                   codebook_size: int | None = None) -> dict[str, Any]:
    """Tokenize and commit one shard (its only writer). Returns a small summary for the manifest."""
    import time as _time

    import pandas as pd


    t0 = _time.perf_counter()
    v = TokenCorpusStore.open(corpus_url).version(plan.version_id)
    if v.is_committed(plan.shard):
        m = v.marker(plan.shard)
        return {"shard": plan.shard, "skipped": True, "n_samples": m["n_samples"], "n_tokens": m["n_tokens"],
                "seconds": 0.0}
    v.discard_uncommitted([plan.shard])
    store = SignalStore.open(store_url, version=store_version)
    tok = get_tokenizer(ckpt, device)
    arrays = encode_samples(tok, store, plan.samples, device=device, batch_size=batch_size,
                            precision=resolve_precision(device, precision))
    rows = pd.DataFrame([s.row() for s in plan.samples]).assign(n_tokens=np.diff(arrays.offsets))
    marker = v.write_shard(plan.shard, arrays, rows, codebook_size=codebook_size or tok.config.codebook_size)
    return {"shard": plan.shard, "skipped": False, "n_samples": marker["n_samples"],
            "n_tokens": marker["n_tokens"], "seconds": round(_time.perf_counter() - t0, 3)}


def finalize_job(job: TokenizeJob) -> dict[str, Any]:
    """Manifest + ``complete`` + make the version current. Idempotent."""
    root = TokenCorpusStore.open(job.corpus_url)
    v = root.version(job.version_id)
    status = v.status() if v.is_complete() else v.finalize(
        [p.shard for p in job.plans], extra={"codebook_size": job.codebook_size, "precision": job.precision})
    root.set_current(job.version_id)
    return status
