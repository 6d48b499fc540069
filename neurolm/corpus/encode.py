"""Encoding stored windows with the frozen tokenizer, with reads overlapped with compute.

Why a module of its own: this is the hot loop of corpus materialisation. A
pool of reader threads turns store windows into padded time-major batches
(pinned on CUDA) ahead of the device; the device runs ``encode_codes`` under
``torch.inference_mode`` (bf16 autocast on CUDA); codes are copied back one
batch late so the copy never stalls the next launch.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from neurolm.errors import StoreError
from neurolm.samples import PATCH
from storage.token_corpus import ShardArrays
from neurolm.tokenizer import build_sample


@dataclass(frozen=True)
class SampleRef:
    """One corpus sample: ``n_sec`` seconds of a recording from ``start`` (samples at 200 Hz)."""

    recording_id: str
    start: int
    n_sec: int
    split: str
    dataset: str

    def read(self, store) -> np.ndarray:
        """float32 [n_ch, n_sec·200] of this sample from the signal store."""
        return store.read_signal(self.recording_id, self.start, self.start + self.n_sec * PATCH)

    def row(self) -> dict[str, Any]:
        """Its manifest row (without ``n_tokens``)."""
        return {"recording_id": self.recording_id, "window_start": self.start, "split": self.split,
                "dataset": self.dataset}


@dataclass(frozen=True)
class LabeledRef(SampleRef):
    """One labeled window (a LABELS row) as one sample: ``length`` samples from ``start``, read through
    `neurolm.datasets.windows.read_label_window` (a TUEV border window wraps to the recording's start)."""

    length: int = 0
    task: str = ""
    label: int = 0
    label_name: str = ""
    subject: str = ""

    def read(self, store) -> np.ndarray:
        from neurolm.datasets.windows import read_label_window

        return read_label_window(store, {"recording_id": self.recording_id, "start": self.start,
                                         "length": self.length})[:, : self.n_sec * PATCH]

    def row(self) -> dict[str, Any]:
        return {**super().row(), "length": self.length, "task": self.task, "label": self.label,
                "label_name": self.label_name, "subject": self.subject}



def prefetch_ordered(make: Callable[[int], Any], n: int, workers: int = 1, depth: int = 2) -> Iterator[Any]:
    """Yield ``make(0) … make(n-1)`` in order, computed by ``workers`` background threads up to
    ``depth`` items ahead, so store reads and sample building overlap tokenizer compute.

    Threads suffice: zarr decoding and numpy release the GIL, and on CUDA the main
    thread mostly waits on the device. Errors surface in order, at the item that failed.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="corpus-read") as ex:
        futs: deque = deque()
        nxt = 0
        while nxt < n and len(futs) < max(1, depth):
            futs.append(ex.submit(make, nxt))
            nxt += 1
        try:
            while futs:
                item = futs.popleft().result()
                if nxt < n:
                    futs.append(ex.submit(make, nxt))
                    nxt += 1
                yield item
        finally:
            for f in futs:
                f.cancel()


class _BatchBuilder:
    """Batch ``b`` of ``samples``: stored windows → time-major padded samples (pinned on CUDA)."""

    def __init__(self, store, samples: Sequence[SampleRef], batch_size: int, max_tokens: int, pin: bool):
        self.store, self.samples, self.batch_size = store, samples, batch_size
        self.max_tokens, self.pin = max_tokens, pin
        self.n_batches = -(-len(samples) // batch_size)
        self._ch: dict[str, list[int]] = {}

    def channels(self, rid: str) -> list[int]:
        ch = self._ch.get(rid)
        if ch is None:
            ch = self._ch[rid] = [int(c) for c in self.store.recording_meta(rid)["ch_indices"]]
        return ch

    def __call__(self, b: int) -> dict[str, Any]:
        import torch


        built = []
        for s in self.samples[b * self.batch_size:(b + 1) * self.batch_size]:
            sig = s.read(self.store)
            built.append(build_sample(sig, self.channels(s.recording_id), max_tokens=self.max_tokens))
        batch = {k: torch.stack([d[k] for d in built]) for k in ("x", "ch", "time", "mask")}
        if self.pin:
            batch["x"] = batch["x"].pin_memory()
        return batch


def encode_samples(tok, store, samples: Sequence[SampleRef], device: str = "cpu", batch_size: int = 16,
                   precision: str = "fp32", readers: int | None = None) -> ShardArrays:
    """Codes, channels and times of ``samples`` as flat time-major arrays with per-sample offsets.

    On CUDA the codes of batch i are copied back only after batch i+1 has been
    launched, so the device never idles on the host copy; ``readers`` threads
    (default 4 on CUDA, 1 on CPU) keep it fed.
    """
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    builder = _BatchBuilder(store, samples, batch_size, tok.config.max_tokens, pin=cuda)
    readers = readers or (4 if cuda else 1)
    codes, chs, times, lengths = [], [], [], []

    def collect(out: "torch.Tensor", batch: dict[str, Any]) -> None:
        out_np = out.cpu().numpy()
        mask, ch, tm = batch["mask"].numpy(), batch["ch"].numpy(), batch["time"].numpy()
        for r in range(out_np.shape[0]):
            valid = mask[r]
            c = out_np[r][valid]
            if c.size and c.min() < 0:
                raise StoreError("tokenizer returned a padding code (-1) at a valid position")
            codes.append(c)
            chs.append(ch[r][valid])
            times.append(tm[r][valid])
            lengths.append(int(valid.sum()))

    pending = None
    with torch.inference_mode():
        for batch in prefetch_ordered(builder, builder.n_batches, workers=readers, depth=readers + 1):
            args = [batch[k].to(dev, non_blocking=cuda) for k in ("x", "ch", "time", "mask")]
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = tok.encode_codes(*args)
            if pending is not None:
                collect(*pending)
            pending = (out, batch)
        if pending is not None:
            collect(*pending)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cat = (lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64))  # noqa: E731
    return ShardArrays(cat(codes), cat(chs), cat(times), offsets)
