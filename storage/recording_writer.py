"""Block-by-block writes of one recording (the streamed ingestion path of long recordings).

Same generation array and commit protocol as :meth:`storage.signal_store.SignalStore.write_recording`
(see :mod:`storage.signal_store`); the marker's checksum is ``sha256-rows:`` (:func:`storage.signal_codec.checksum_rows`).
"""

from __future__ import annotations

import hashlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from neurolm.errors import ConfigError, StoreError
from storage.signal_codec import json_safe, quantize, rows_digest

if TYPE_CHECKING:
    from storage.signal_store import SignalStore


class RecordingWriter:
    """Writes one recording to a new generation array in consecutive time blocks, then commits it.

    Each :meth:`write` takes the next float32 block (model units) of all channels; every
    block but the last must be a whole number of store chunks (``window`` samples), so
    each chunk is encoded and written exactly once, by this one writer. :meth:`commit`
    checks that ``n_samples`` were written and writes the commit marker, LAST.
    """

    def __init__(self, store: SignalStore, rid: str, ch_names: tuple[str, ...], ch_indices: tuple[int, ...],
                 n_samples: int):
        store._check_recording(rid, (len(ch_names), n_samples), ch_names, ch_indices, None)
        store.check_lock()
        self.store, self.rid, self.ch_names, self.ch_indices = store, rid, ch_names, ch_indices
        self.n_ch, self.n = len(ch_names), int(n_samples)
        self.arr, self.direct, self.name, self.window = store._new_array(rid, self.n_ch, self.n, ch_names,
                                                                         ch_indices, {})
        self.pos = 0
        self.n_clipped = self.n_nonfinite = 0
        self._rows = [hashlib.sha256() for _ in range(self.n_ch)]
        self._q = np.empty((self.n_ch, self.window), "<i2")

    def write(self, block: np.ndarray) -> None:
        """Quantize and write the next ``block`` [n_ch, k] (k a multiple of ``window`` unless it ends the array)."""
        block = np.asarray(block)
        k = block.shape[1] if block.ndim == 2 else -1
        end = self.pos + k
        if block.ndim != 2 or block.shape[0] != self.n_ch or end > self.n or (k % self.window and end != self.n):
            raise ConfigError(f"recording {self.rid}: block of shape {block.shape} at sample {self.pos} does not fit "
                              f"[{self.n_ch}, {self.n}] in whole chunks of {self.window}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for s0 in range(0, k, self.window):
                s1 = min(k, s0 + self.window)
                q = self._q[:, : s1 - s0]
                _, c, f = quantize(block[:, s0:s1], self.store.scale, out=q)
                self.n_clipped, self.n_nonfinite = self.n_clipped + c, self.n_nonfinite + f
                for h, row in zip(self._rows, q):
                    h.update(np.ascontiguousarray(row).data)
                if self.direct is not None:
                    self.direct.put((self.pos + s0) // self.window, q)
                else:
                    self.arr[:, self.pos + s0: self.pos + s1] = q
        self.pos = end

    def commit(self, rec: Any, attrs: dict | None = None) -> dict[str, Any]:
        """Write the commit marker (flags, channel flags, orig_sfreq, duration from ``rec``); returns it."""
        if self.pos != self.n:
            raise StoreError(f"recording {self.rid}: commit after {self.pos} of {self.n} samples")
        safe_attrs = json_safe(attrs or {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.arr.update_attributes({"attrs": safe_attrs})
        digest = rows_digest([h.digest() for h in self._rows])
        return self.store._commit(self.rid, self.name, (self.n_ch, self.n), digest, self.ch_names, self.ch_indices,
                                  rec, self.n_clipped, self.n_nonfinite, safe_attrs)
