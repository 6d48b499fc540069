"""Benchmark: standardize-and-write throughput, neurolm vs a NeuroLM-style MNE pipeline, one run.

Run:  .venv/bin/python bench/bench_ingest_throughput.py [--quick] [--files N] [--minutes M]

Both sides process the same generated TUH-like EDF files (``neurolm.synth``:
23 ``EEG XX-REF`` channels plus EKG/photic/IBI/bursts/suppr, 250 and 256 Hz,
EDF int16) and both crop the last 10 s, as NeuroLM's pretraining script does.

- ours: ``read_header`` -> ``select_channels`` -> ``read_recording(picks)`` ->
  ``standardize`` -> ``SignalStore.write_recording`` (int16 Zarr v3, zstd, commit
  marker), i.e. the ingestion worker's per-file path without Prefect.
- reference (``prepare_TUH_pretrain.py``): ``mne.io.read_raw_edf`` -> pick ->
  ``filter(0.1, 75)`` -> ``notch_filter(60)`` -> ``resample(200)`` ->
  ``get_data(units='uV')`` -> crop 10 s -> one pickle per ``(1024 // n_ch)``-s
  sample, ``{"X": float64, "ch_names": [...]}``.

Threads are pinned to one before numpy loads; the figure of merit is EEG-hours
(recording hours) per core-second of CPU time (``time.process_time``, which
counts system time of the writes too). Store size is bytes on disk under the
version's ``signals.zarr`` per channel-hour of *input* EEG.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import pickle  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neurolm.readers import read_header, read_recording  # noqa: E402
from neurolm.standardize import StandardizeConfig, standardize  # noqa: E402
from neurolm.synth import synth_signal, write_recording  # noqa: E402
from neurolm.vocab import TUH_23, select_channels  # noqa: E402
from storage.signal_store import SignalStore  # noqa: E402

TUH_LABELS = tuple(f"EEG {n}-REF" for n in TUH_23) + (
    "EEG EKG1-REF", "PHOTIC-REF", "IBI", "BURSTS", "SUPPR", "EEG ROC-REF", "EEG LOC-REF", "EEG 26-REF")
CROP_S = 10.0


def make_files(out: Path, n_files: int, minutes: float) -> list[tuple[Path, float]]:
    files = []
    for i in range(n_files):
        fs = (250.0, 256.0)[i % 2]
        data = synth_signal(len(TUH_LABELS), fs, minutes * 60, seed=i, ch_names=TUH_LABELS)
        path = write_recording(out / f"aaaaa{i:03d}_s001_t000.edf", "edf", data, fs, TUH_LABELS)
        files.append((Path(path), minutes / 60))
    return files


def ours(files, store_url: str) -> dict:
    cfg = StandardizeConfig(crop_end_s=CROP_S)
    store = SignalStore.open(store_url, create=True, config=cfg)
    t = {"read": 0.0, "standardize": 0.0, "write": 0.0}
    for path, _ in files:
        t0 = time.process_time()
        header = read_header(str(path))
        sel = select_channels(header.ch_names)
        raw = read_recording(str(path), picks=[header.ch_names[p] for p in sel.positions])
        sel = select_channels(raw.ch_names)
        t1 = time.process_time()
        rec = standardize(raw, sel, cfg)
        t2 = time.process_time()
        store.write_recording(path.stem, rec, {"source_path": str(path)})
        t3 = time.process_time()
        t["read"] += t1 - t0
        t["standardize"] += t2 - t1
        t["write"] += t3 - t2
    t["total"] = sum(t.values())
    t["bytes"] = _du(Path(store.version_url.replace("file://", "")) / "signals.zarr")
    return t


def reference(files, out_dir: Path) -> dict:
    import mne

    mne.set_log_level("ERROR")
    t = {"read": 0.0, "standardize": 0.0, "write": 0.0}
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, _ in files:
        t0 = time.process_time()
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
        keep = [ch for ch in raw.ch_names if ch.split(" ")[-1].split("-")[0] in TUH_23]
        raw.pick(keep)
        raw.load_data(verbose="error")
        t1 = time.process_time()
        raw.filter(l_freq=0.1, h_freq=75.0, verbose="error")
        raw.notch_filter(60.0, verbose="error")
        raw.resample(200, verbose="error")
        x = raw.get_data(units="uV")[:, : -int(CROP_S * 200)]
        t2 = time.process_time()
        names = [ch.split(" ")[-1].split("-")[0] for ch in raw.ch_names]
        win = (1024 // len(names)) * 200
        for i in range(x.shape[1] // win):
            with open(out_dir / f"{path.stem}_{i}.pkl", "wb") as fh:
                pickle.dump({"X": x[:, i * win:(i + 1) * win], "ch_names": names}, fh)
        t3 = time.process_time()
        t["read"] += t1 - t0
        t["standardize"] += t2 - t1
        t["write"] += t3 - t2
    t["total"] = sum(t.values())
    t["bytes"] = _du(out_dir)
    return t


def _override_clevel(level: int) -> None:
    """Bench-only what-if: the store builds ``zarr.codecs.BloscCodec(...)`` at write time."""
    import zarr.codecs as zc

    orig = zc.BloscCodec

    def codec(**kw):
        return orig(**{**kw, "clevel": level})

    zc.BloscCodec = codec


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 files x 3 minutes (smoke run)")
    ap.add_argument("--files", type=int, default=None, help="number of EDF files (default 6)")
    ap.add_argument("--minutes", type=float, default=None, help="minutes per file (default 20)")
    ap.add_argument("--clevel", type=int, default=None,
                    help="what-if: override the store's Blosc zstd level (the store itself uses 5)")
    ap.add_argument("--workdir", default=None, help="where files/stores go (default: a temp dir, removed)")
    args = ap.parse_args()
    n_files = args.files or (2 if args.quick else 6)
    minutes = args.minutes or (3.0 if args.quick else 20.0)
    if args.clevel is not None:
        _override_clevel(args.clevel)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="neurolm-bench-ingest-"))
    try:
        files = make_files(work / "edf", n_files, minutes)
        hours = sum(h for _, h in files)
        ch_hours = hours * len(TUH_23)
        ours(files[:1], str(work / "warm-store"))  # warm imports + filter design (a worker does this once)
        reference(files[:1], work / "warm-pkl")
        a = ours(files, str(work / "store"))
        b = reference(files, work / "pickles")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    level = "" if args.clevel is None else f", store zstd clevel overridden to {args.clevel}"
    print(f"\n{n_files} TUH-like EDF files x {minutes:g} min (23 EEG + 8 other channels, 250/256 Hz), "
          f"{hours:.2f} EEG-hours, 1 thread, CPU time{level}\n")
    print("| pipeline | read s | standardize s | write s | total core-s | EEG-h per core-s "
          "| output MB per channel-hour |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("neurolm (FFT + int16 Zarr)", a), ("NeuroLM-style MNE + pickles", b)):
        print(f"| {name} | {r['read']:.2f} | {r['standardize']:.2f} | {r['write']:.2f} | {r['total']:.2f} "
              f"| {hours / r['total']:.3f} | {r['bytes'] / 1e6 / ch_hours:.2f} |")
    print(f"\nspeed-up per core: **{b['total'] / a['total']:.1f}x** (target >= 3x); "
          f"store {a['bytes'] / 1e6 / ch_hours:.2f} MB per channel-hour (target <= 1.2)")
    print(f"standardize alone: {b['standardize'] / a['standardize']:.1f}x; "
          f"pickles are {b['bytes'] / max(a['bytes'], 1):.1f}x the store size")


if __name__ == "__main__":
    main()
