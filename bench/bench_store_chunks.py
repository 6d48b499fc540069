"""Blosc candidates on the int16 chunks an ingest really stored (issue 15): size, compress and decode CPU.

The chunks of the first 3 recordings of a store written by ``neurolm ingest`` (e.g. a store of
``bench_ingest_cli.py --workdir DIR``: TUH-like 1-h files, 21 channels, one chunk per 48-s sample
window), encoded and decoded with numcodecs' Blosc on one thread, best of 3. The stored int16 data
are what every candidate encodes, so the store's content hash does not depend on the choice.

    .venv/bin/python bench/bench_store_chunks.py STORE
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numcodecs.blosc as nb
import numpy as np
from numcodecs import Blosc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from storage.signal_store import SignalStore  # noqa: E402

S, B = Blosc.SHUFFLE, Blosc.BITSHUFFLE
CANDIDATES = [("zstd", 2, S), ("zstd", 1, S), ("zstd", 2, B), ("lz4", 1, B), ("lz4", 5, S), ("lz4", 5, B), ("lz4", 9, B),
              ("lz4hc", 3, B), ("blosclz", 9, B)]


def main() -> None:
    nb.set_nthreads(1)
    st = SignalStore.open(sys.argv[1])
    chunks = []
    for rid in list(st.read_table("recordings")["recording_id"])[:3]:
        a = st._array(rid)
        data = np.asarray(a[:])
        width = a.chunks[1]
        chunks += [np.ascontiguousarray(data[:, s:s + width]) for s in range(0, data.shape[1], width)]
    hours = sum(c.shape[0] * c.shape[1] for c in chunks) / 200 / 3600
    print(f"{len(chunks)} chunks of {chunks[0].shape} {chunks[0].dtype}, {hours:.1f} channel-hours, 3 recordings; "
          "CPU ms per recording, best of 3\n")
    print("| codec | MB per channel-hour | compress (ms) | decode (ms) |")
    print("|---|---:|---:|---:|")
    for cname, level, shuffle in CANDIDATES:
        codec = Blosc(cname=cname, clevel=level, shuffle=shuffle)
        t_enc = t_dec = float("inf")
        for _ in range(3):
            t0 = time.process_time()
            enc = [codec.encode(x) for x in chunks]
            t_enc = min(t_enc, time.process_time() - t0)
            t0 = time.process_time()
            for e in enc:
                codec.decode(e)
            t_dec = min(t_dec, time.process_time() - t0)
        size = sum(len(e) for e in enc)
        print(f"| {cname} {level} {'bit' if shuffle == B else 'byte'} shuffle | {size / 1e6 / hours:.3f} | "
              f"{t_enc / 3 * 1000:.1f} | {t_dec / 3 * 1000:.1f} |")


if __name__ == "__main__":
    main()
