"""Per-file cost of the bounded children (neurolm.ingest.limits): fork + cap + pipe + wait.

Measured in a process that has imported what an ingest worker imports (MNE, scipy, pandas, zarr), because
fork's cost grows with the parent's page tables. Prints the median and p90 per call over N calls, and the
same small EDF ingested with and without isolation.

    PYTHONPATH=. python bench/bench_file_limits.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(n: int = 200) -> None:
    import mne  # noqa: F401 - the worker's imports, for a realistic fork
    import pandas  # noqa: F401
    import zarr  # noqa: F401

    from neurolm.ingest import open_store, process_batch
    from neurolm.ingest.items import SourceItem
    from neurolm.ingest.limits import FileLimits, _address_space, map_bounded, run_bounded
    from neurolm.synth import default_ch_names, synth_signal, write_recording

    limits = FileLimits(timeout_s=60.0)
    run_bounded(lambda: None, limits)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        run_bounded(lambda: {"status": "ingested"}, limits)
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"parent address space {_address_space() / 2**30:.2f} GiB; empty bounded call over {n}: "
          f"median {statistics.median(times) * 1e3:.2f} ms, p90 {times[int(0.9 * n)] * 1e3:.2f} ms")
    batch = list(range(8))
    t = time.perf_counter()
    for _ in range(n // 8):
        map_bounded(lambda i: {"status": i}, batch, limits, lambda i, why: None)
    print(f"batches of 8 (one child per batch): {(time.perf_counter() - t) / (n // 8 * 8) * 1e3:.2f} ms per item")
    ch = default_ch_names(19)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [write_recording(Path(tmp) / f"r{i}.edf", "edf", synth_signal(19, 256.0, 60, seed=i, ch_names=ch),
                                 256.0, ch) for i in range(8)]
        for isolate in (False, True, False, True):
            store = open_store(str(Path(tmp) / f"store{isolate}{time.time()}"))
            items = [SourceItem(path=str(p), recording_id=f"b-{i}", dataset="b", subject="s") for i, p in
                     enumerate(paths)]
            t = time.perf_counter()
            process_batch(items, store.url, store.version_id, limits=FileLimits(isolate=isolate))
            print(f"8 x 60 s 19-ch EDF, isolate={isolate}: {(time.perf_counter() - t) / 8 * 1e3:.1f} ms per file")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
