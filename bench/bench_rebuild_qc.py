"""Cost of a versioned rebuild and of the QC figures, against their references in the same run.

Rebuild. Reference: a fresh ingest of the same archive under the new config
into a new store (``IngestState`` + ``process_batch``, the library path of
``flows/ingest.py``). Candidate: ``rebuild_store`` from a store built under the
old config (same worker, run sequentially so the comparison is not about
parallelism). Reported: rebuild / fresh-ingest ratio (the rebuild's own
overhead: reading the old catalog and markers, writing tables, switching),
the cost of resuming a finished build (``--no-switch`` then switch: plan +
tables only) and of the "already at this config" check, and whether the
rebuilt signals are bit-identical to the fresh ingest (content hash).

QC. Reference: a full scan (every sample of every recording read, Welch PSD
and RMS over all of it), the naive way to draw the same three figures.
Candidate: ``make_qc_figures`` (a bounded sample: ``max_recordings`` x
``seconds`` from the middle). Reported: both times and the ratio.

Times are CPU seconds of this process (wall time on the shared dev VM is
dominated by other jobs). Usage:

    .venv/bin/python bench/bench_rebuild_qc.py [--recordings 12] [--minutes 3] [--channels 19]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

TUH = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3", "T4", "T5", "T6",
       "FZ", "CZ", "PZ", "A1", "A2", "T1", "T2")


def _archive(root: Path, n: int, minutes: float, n_ch: int) -> None:
    import numpy as np

    from neurolm.synth.writers import write_recording

    rng = np.random.default_rng(0)
    sf = 256.0
    t = np.arange(int(minutes * 60 * sf)) / sf
    names = tuple(f"EEG {c}-REF" for c in TUH[:n_ch])
    for i in range(n):
        x = rng.normal(scale=15.0, size=(n_ch, t.size)) + 30.0 * np.sin(2 * np.pi * 60.0 * t)
        p = root / "edf" / f"{'aaaaaa' + chr(97 + i // 2) + chr(97 + i % 2)}" / "s001_2020" / "01_tcp_ar"
        p.mkdir(parents=True, exist_ok=True)
        write_recording(p / f"{'aaaaaa' + chr(97 + i // 2) + chr(97 + i % 2)}_s001_t000.edf", "edf", x, sf, names)


def _ingest(src: Path, url: str, cfg) -> float:
    from neurolm.ingest import IngestState, discover, make_batches, process_batch
    from storage.signal_store import SignalStore

    t0 = time.process_time()
    store = SignalStore.open(url, create=True, config=cfg)
    state = IngestState.load(store, "bench")
    diff = state.plan(discover(str(src), "tueg", family="tuh"), "tueg")
    for b in make_batches(diff.to_ingest, 4):
        state.add(process_batch(b, store.url, store.version_id, run_id="bench"))
    state.finalize()
    return time.process_time() - t0


def _full_scan_stats(store):
    """Reference QC statistics: the same reductions over every sample of every recording."""
    import numpy as np
    from scipy.signal import welch

    from neurolm.ingest.qc import QCSample

    q = QCSample()
    for rid in store.committed_ids():
        m = store.recording_meta(rid)
        x = store.read_signal(rid).astype(np.float64) * 100.0
        ds = (m.get("attrs") or {}).get("catalog_row", {}).get("dataset", "unknown")
        q.n_recordings[ds] = q.n_recordings.get(ds, 0) + 1
        cov = q.coverage.setdefault(ds, {})
        for ci in m["ch_indices"]:
            cov[int(ci)] = cov.get(int(ci), 0) + 1
        x -= x.mean(axis=1, keepdims=True)
        q.rms_uv.setdefault(ds, []).extend(np.sqrt((x ** 2).mean(axis=1)).tolist())
        f, p = welch(x, fs=200.0, nperseg=400, axis=1)
        q.freqs = f
        q.psd.setdefault(ds, []).append(np.median(p, axis=0))
    return q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=12)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--channels", type=int, default=19)
    args = ap.parse_args()

    from neurolm.ingest.qc import make_qc_figures
    from neurolm.ingest.rebuild import make_rebuild_params, rebuild_store, target_versions
    from neurolm.standardize import StandardizeConfig
    from storage.signal_store import SignalStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-rebuild-"))
    src = tmp / "src"
    _archive(src, args.recordings, args.minutes, args.channels)
    hours = args.recordings * args.minutes / 60
    print(f"archive: {args.recordings} EDF x {args.minutes} min x {args.channels} ch = {hours:.2f} h")

    t_first = _ingest(src, str(tmp / "store"), StandardizeConfig(notch_hz=60.0))
    t_fresh = _ingest(src, str(tmp / "fresh"), StandardizeConfig(notch_hz=50.0))
    t0 = time.process_time()
    res = rebuild_store(make_rebuild_params(store=str(tmp / "store"), notch_hz=50.0, switch=False))
    t_rebuild = time.process_time() - t0
    t0 = time.process_time()
    res2 = rebuild_store(make_rebuild_params(store=str(tmp / "store"), notch_hz=50.0))
    t_resume = time.process_time() - t0
    t0 = time.process_time()
    old, new = target_versions(make_rebuild_params(store=str(tmp / "store"), notch_hz=50.0))
    t_check = time.process_time() - t0
    same = (SignalStore.open(str(tmp / "store")).content_hash(tables=[])
            == SignalStore.open(str(tmp / "fresh")).content_hash(tables=[]))
    assert res.n_ingested == args.recordings and res2.n_resumed == args.recordings and old == new

    from neurolm.ingest.qc import collect_qc_sample

    store = SignalStore.open(str(tmp / "store"))
    t0 = time.process_time()
    collect_qc_sample(store, max_recordings=8, seconds=30)
    t_sample = time.process_time() - t0
    t0 = time.process_time()
    _full_scan_stats(store)
    t_full = time.process_time() - t0
    t0 = time.process_time()
    make_qc_figures(store, tmp / "qc", max_recordings=8, seconds=30)
    t_figs = time.process_time() - t0

    print(f"first ingest (60 Hz notch)           {t_first:7.2f} CPU-s")
    print(f"fresh ingest, new config (reference) {t_fresh:7.2f} CPU-s")
    print(f"rebuild to the new config            {t_rebuild:7.2f} CPU-s   ratio {t_rebuild / t_fresh:.2f}")
    print(f"resume a finished build + switch     {t_resume:7.2f} CPU-s   ratio {t_resume / t_fresh:.3f}")
    print(f"'already at this config' check       {t_check:7.3f} CPU-s")
    print(f"rebuilt signals identical to fresh ingest: {same}")
    print(f"QC statistics, full scan (reference) {t_full:7.2f} CPU-s")
    print(f"QC statistics, bounded sample        {t_sample:7.2f} CPU-s   ratio {t_sample / t_full:.2f}")
    print(f"make_qc_figures total (sample + 3 PNG) {t_figs:5.2f} CPU-s")

if __name__ == "__main__":
    main()
