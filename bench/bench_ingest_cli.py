"""Benchmark: wall-clock per file of `neurolm ingest` (the CLI, Prefect + Dask) vs a NeuroLM-style MNE chain.

Run:  .venv/bin/python bench/bench_ingest_cli.py [--quick] [--files N] [--minutes M] [--runs R]

Same generated TUH-like EDF files for both sides (``neurolm.synth``: 21 ``EEG XX-REF``
channels + EKG + photic, 256 Hz, EDF int16; ``--minutes`` long, 60 in the issue,
shorter by default to keep a run short -- the figure is per file of that length).

- reference, in this process (one process, one thread, imports and filter design
  warmed on one file first): ``mne.io.read_raw_edf`` -> pick the 21 EEG channels
  -> ``filter(0.1, 75)`` -> ``notch_filter(60)`` -> ``resample(200)`` ->
  ``get_data(units='uV')`` -> crop 10 s -> one pickle per ``1024 // n_ch``-s sample
  (``prepare_TUH_pretrain.py``). Wall time per file: min/median/max over the files.
- ours: ``neurolm ingest SRC --store S --workers W`` as a subprocess (its own
  Prefect server, Dask cluster, tables, QC figures). Per-file time is *marginal*:
  (wall of an N-file run - wall of a 2-file run) / (N - 2), so start-up, the
  first-file filter design and the end-of-run tables cancel.
- in-process ``process_batch`` on the same files (warm): the worker's own per-file
  time, so CLI marginal - this = what orchestration (Prefect task bookkeeping, Dask
  transfer, table folding) adds per file.

Each run repeats all three (interleaved, so machine-load drift hits both sides);
the table gives min/median/max over runs, and the ratio of medians. ``--workers``
lists the worker counts (default 1,2); scaling efficiency = marginal(1) / (W x
marginal(W)). Every N-file store's ``SignalStore.content_hash()`` is printed: all
must be equal (whatever the worker count), and equal to the hash printed by the
code before an optimisation (same files, same paths: pass ``--workdir``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import pickle  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from neurolm.synth import synth_signal, write_recording  # noqa: E402
from neurolm.vocab import TUH_23  # noqa: E402

EEG = TUH_23[:21]
LABELS = tuple(f"EEG {n}-REF" for n in EEG) + ("EEG EKG1-REF", "PHOTIC-REF")
SFREQ = 256.0
CROP_S = 10.0
DISTINCT = 4  # distinct synthetic signals; further files are copies (same bytes, own path and id)


def make_files(src: Path, n_files: int, minutes: float) -> list[Path]:
    """``n_files`` TUH-named EDFs under ``src`` (one subject folder each)."""
    files: list[Path] = []
    for i in range(n_files):
        path = src / f"aaaaa{i:03d}" / f"aaaaa{i:03d}_s001_t000.edf"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i < DISTINCT:
            data = synth_signal(len(LABELS), SFREQ, minutes * 60, seed=i, ch_names=LABELS)
            write_recording(path, "edf", data, SFREQ, LABELS)
        else:
            shutil.copyfile(files[i % DISTINCT], path)
        files.append(path)
    return files


def subset(src: Path, files: list[Path], n: int) -> Path:
    """A source tree holding the first ``n`` files (hard links: same bytes, no copy)."""
    out = src.parent / f"src{n}"
    if not out.exists():
        for f in files[:n]:
            dst = out / f.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(f, dst)
    return out


def reference_chain(files: list[Path], out_dir: Path) -> list[float]:
    """NeuroLM's per-file MNE chain, wall seconds per file."""
    import mne

    mne.set_log_level("ERROR")
    times = []
    for path in files:
        t0 = time.perf_counter()
        raw = mne.io.read_raw_edf(path, preload=False, verbose="error")
        raw.pick([ch for ch in raw.ch_names if ch.split(" ")[-1].split("-")[0] in EEG])
        raw.load_data(verbose="error")
        raw.filter(l_freq=0.1, h_freq=75.0, verbose="error")
        raw.notch_filter(60.0, verbose="error")
        raw.resample(200, verbose="error")
        x = raw.get_data(units="uV")[:, : -int(CROP_S * 200)]
        names = [ch.split(" ")[-1].split("-")[0] for ch in raw.ch_names]
        win = (1024 // len(names)) * 200
        out_dir.mkdir(parents=True, exist_ok=True)
        for i in range(x.shape[1] // win):
            with open(out_dir / f"{path.stem}_{i}.pkl", "wb") as fh:
                pickle.dump({"X": x[:, i * win:(i + 1) * win], "ch_names": names}, fh)
        times.append(time.perf_counter() - t0)
        shutil.rmtree(out_dir, ignore_errors=True)
    return times


def in_process(src: Path, store_dir: Path) -> list[float]:
    """``process_batch`` file by file in this process: the worker's own wall seconds per file."""
    from neurolm.ingest import discover, open_store, process_batch

    items = [f.item for f in discover(str(src), "tuhbench")]
    store = open_store(str(store_dir))
    rows = [process_batch([it], store.url, store.version_id)[0] for it in items]
    assert all(r["status"] == "ingested" for r in rows), [r["reason"] for r in rows]
    shutil.rmtree(store_dir, ignore_errors=True)
    return [r["seconds"] for r in rows]


def cli(src: Path, store_dir: Path, workers: int) -> float:
    """Wall seconds of one ``neurolm ingest`` subprocess into a fresh store."""
    shutil.rmtree(store_dir, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PREFECT_HOME": tempfile.mkdtemp(prefix="neurolm-bench-prefect-"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "neurolm", "ingest", str(src), "--store", str(store_dir), "--dataset", "tuhbench",
           "--workers", str(workers), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(env["PREFECT_HOME"], ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"neurolm ingest failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall


def content_hash(store_dir: Path) -> str:
    from storage.signal_store import SignalStore

    return SignalStore.open(str(store_dir)).content_hash()


def mmm(xs: list[float]) -> str:
    return f"{min(xs):.3f} / {statistics.median(xs):.3f} / {max(xs):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 files x 10 min, 2 runs")
    ap.add_argument("--files", type=int, default=None, help="files in the big run (default 10)")
    ap.add_argument("--minutes", type=float, default=None, help="minutes per file (default 20)")
    ap.add_argument("--runs", type=int, default=None, help="repetitions (default 3)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--workdir", default=None, help="where files/stores go (kept; default: a temp dir, removed)")
    args = ap.parse_args()
    n = args.files or (6 if args.quick else 10)
    minutes = args.minutes or (10.0 if args.quick else 20.0)
    runs = args.runs or (2 if args.quick else 3)
    workers = [int(w) for w in args.workers.split(",")]
    if n < 3:
        raise SystemExit("--files must be >= 3 (the marginal is the N-file run minus a 2-file run)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="neurolm-bench-cli-"))
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    try:
        src = work / "edf"
        files = sorted(src.rglob("*.edf")) if src.exists() else []
        if len(files) != n:
            shutil.rmtree(work / "edf", ignore_errors=True)
            for old in work.glob("src*"):
                shutil.rmtree(old)
            files = make_files(src, n, minutes)
        src2, srcn = subset(src, files, 2), subset(src, files, n)
        reference_chain(files[:1], work / "pkl")  # imports + filter design, as a worker does once
        in_process(src2, work / "warm-store")
        ref: list[float] = []
        inproc: list[float] = []
        marg: dict[int, list[float]] = {w: [] for w in workers}
        walls: dict[int, list[tuple[float, float]]] = {w: [] for w in workers}
        hashes: set[str] = set()
        for r in range(runs):
            ref_run = reference_chain(files, work / "pkl")
            ref.append(statistics.median(ref_run))
            inproc.append(statistics.median(in_process(srcn, work / "inproc-store")))
            for w in workers:
                t2 = cli(src2, work / f"store2-w{w}", w)
                tn = cli(srcn, work / f"store{n}-w{w}", w)
                marg[w].append((tn - t2) / (n - 2))
                walls[w].append((t2, tn))
                hashes.add(content_hash(work / f"store{n}-w{w}"))
            print(f"run {r + 1}/{runs}: reference {ref[-1]:.3f} s/file, in-process {inproc[-1]:.3f} s/file, "
                  + ", ".join(f"CLI w={w} {marg[w][-1]:.3f} s/file (2 files {walls[w][-1][0]:.1f} s, "
                              f"{n} files {walls[w][-1][1]:.1f} s)" for w in workers), flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    med_ref = statistics.median(ref)
    print(f"\n{n} TUH-like EDF files x {minutes:g} min (21 EEG + 2 other channels, 256 Hz), {runs} runs, "
          f"{time.perf_counter() - t_start:.0f} s; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
          f"({os.cpu_count()} CPUs)\n")
    print("| pipeline | s per file, min / median / max over runs | x reference (median) |")
    print("|---|---|---|")
    print(f"| NeuroLM-style MNE chain + pickles (1 process) | {mmm(ref)} | 1.0 |")
    print(f"| `process_batch` in-process (worker's own time) | {mmm(inproc)} | "
          f"{med_ref / statistics.median(inproc):.2f} |")
    for w in workers:
        print(f"| `neurolm ingest --workers {w}`, marginal | {mmm(marg[w])} | "
              f"**{med_ref / statistics.median(marg[w]):.2f}** |")
    if 1 in workers:
        m1 = statistics.median(marg[1])
        for w in workers:
            if w > 1:
                print(f"\nscaling 1 -> {w} workers: efficiency {m1 / (w * statistics.median(marg[w])):.2f}")
        print(f"orchestration per file (CLI w=1 marginal - in-process): {m1 - statistics.median(inproc):+.3f} s")
    print(f"per-run ratios, reference / CLI w={workers[0]}: "
          + ", ".join(f"{a / b:.2f}" for a, b in zip(ref, marg[workers[0]])))
    print(f"store content hash ({len(hashes)} distinct over all N-file stores): {', '.join(sorted(hashes))}")
    if len(hashes) != 1:
        raise SystemExit("stores of the same files differ")


if __name__ == "__main__":
    main()
