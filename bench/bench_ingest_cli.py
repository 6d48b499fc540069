"""Benchmark: wall-clock per file of `neurolm ingest` (the CLI, Prefect + Dask) vs a NeuroLM-style MNE chain.

Run:  .venv/bin/python bench/bench_ingest_cli.py [--quick] [--files N] [--minutes M] [--runs R]

Same generated TUH-like EDF files for both sides (``neurolm.synth``: 21 ``EEG XX-REF``
channels + EKG + photic, 256 Hz, EDF int16; by default 24 files x 60 minutes, as in
issue 15 -- the figure is per file of that length).

- reference, in this process (one process, one thread, imports and filter design
  warmed on one file first): ``mne.io.read_raw_edf`` -> pick the 21 EEG channels
  -> ``filter(0.1, 75)`` -> ``notch_filter(60)`` -> ``resample(200)`` ->
  ``get_data(units='uV')`` -> crop 10 s -> one pickle per ``1024 // n_ch``-s sample
  (``prepare_TUH_pretrain.py``). Wall time per file: min/median/max over the files.
- ours: ``neurolm ingest SRC --store S --workers W`` as a subprocess (its own
  Prefect server, Dask cluster, tables, QC figures). Per-file time is the *marginal*
  cost of a file, measured inside the run: the summary's ``steady_s_per_file`` =
  (last file finished - W-th file finished) / files finished after it, from the
  workers' own timestamps. So the once-per-run start-up (Prefect server, Dask
  cluster, imports, filter design on each worker's first file) and the end-of-run
  tables and QC figures are out; Prefect task bookkeeping, Dask transfers and
  table folding between batches are in. The issue's definition -- the wall time of
  an N-file run minus a 2-file run, over N - 2 -- is ``--wall-marginal``: on this
  loaded 2-core machine the start-up alone varies by tens of seconds between runs
  (measured: 69-137 s for the same 2-file run), far more than N files' difference.
- in-process ``process_batch`` on the same files, in the batches the CLI makes for
  one worker (warm): the worker's own steady-state time per file; the CLI's steady
  state minus this is what orchestration (Prefect task bookkeeping, Dask transfer,
  table folding) adds per file.

This process runs with the Dask workers' glibc settings (``MALLOC_*`` of
``flows.runtime.WORKER_ENV``; ``--default-malloc`` to keep glibc's defaults), so the
reference chain gets the same allocator as our workers. ``--compare-root DIR`` also
runs the CLI from another checkout (the code before a change) in the same runs.

Each run repeats all three (interleaved, so machine-load drift hits both sides);
the table gives min/median/max over runs, and the ratio of medians. ``--workers``
lists the worker counts (default 1,2); scaling efficiency = per-file time(1) / (W x
per-file time(W)). ``--pinned`` also runs W workers with the whole command on W CPUs only
(``sched_setaffinity``): scaling in cores, each side with exactly its cores -- unpinned, one
worker's reader/writer threads, the Prefect server and the client already use a second core, so
1 -> 2 workers on a 2-core machine cannot look linear. Every N-file store's ``SignalStore.content_hash()`` is printed: all
must be equal (whatever the worker count), and equal to the hash printed by the
code before an optimisation (same files, same paths: pass ``--workdir``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
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


def in_process(src: Path, store_dir: Path) -> float:
    """``process_batch`` in this process over the batches the CLI makes for one worker: steady-state s per file.

    Same measure as the CLI's ``steady_s_per_file`` (last file finished - first file finished, over the
    files after it; a file's write overlaps the next file's read, so per-file ``seconds`` do not add up).
    """
    from neurolm.ingest import discover, make_batches, open_store, process_batch

    files = discover(str(src), "tuhbench")
    store = open_store(str(store_dir))
    rows = []
    for batch in make_batches(files, 8, min_batches=2):
        rows += process_batch(batch, store.url, store.version_id)
    assert all(r["status"] == "ingested" for r in rows), [r["reason"] for r in rows]
    shutil.rmtree(store_dir, ignore_errors=True)
    ends = sorted(r["t_end"] for r in rows)
    return (ends[-1] - ends[0]) / (len(ends) - 1)


def cli(src: Path, store_dir: Path, workers: int, root: Path = ROOT, extra: tuple[str, ...] = (),
        cpus: int | None = None) -> tuple[float, float]:
    """(wall seconds, steady-state seconds per file) of one ``neurolm ingest`` subprocess (code from ``root``) into a
    fresh store; ``cpus``: the whole command (Prefect server, scheduler, workers, client) on that many CPUs only."""
    shutil.rmtree(store_dir, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "PREFECT_HOME": tempfile.mkdtemp(prefix="neurolm-bench-prefect-"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    cmd = [sys.executable, "-m", "neurolm", "ingest", str(src), "--store", str(store_dir), "--dataset", "tuhbench",
           "--workers", str(workers), "--json", *extra]
    t0 = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH
    pin = sorted(os.sched_getaffinity(0))[:cpus] if cpus else None
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(root),
                          preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None)
    wall = time.perf_counter() - t0
    shutil.rmtree(env["PREFECT_HOME"], ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"neurolm ingest failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    steady = summary.get("steady_s_per_file")
    return wall, float(steady) if steady is not None else float("nan")


def content_hash(store_dir: Path) -> str:
    from storage.signal_store import SignalStore

    return SignalStore.open(str(store_dir)).content_hash()


def mmm(xs: list[float]) -> str:
    return f"{min(xs):.3f} / {statistics.median(xs):.3f} / {max(xs):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 files x 5 min, 1 run, workers 1 and 2 (smoke run)")
    ap.add_argument("--files", type=int, default=None, help="files in the big run (default 24, as in issue 15)")
    ap.add_argument("--minutes", type=float, default=None, help="minutes per file (default 60, as in issue 15)")
    ap.add_argument("--runs", type=int, default=None, help="repetitions (default 3)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    ap.add_argument("--wall-marginal", action="store_true",
                    help="also time a 2-file run per setting: whole-command marginal (N-file - 2-file) / (N - 2)")
    ap.add_argument("--compare-root", type=Path, default=None,
                    help="also run the CLI from this checkout (e.g. the code before a change) in the same runs")
    ap.add_argument("--default-malloc", action="store_true",
                    help="keep glibc's defaults in this process (default: the Dask workers' MALLOC_* settings, so the "
                         "reference chain and the in-process figure run with the same allocator as the workers)")
    ap.add_argument("--per-core", action="store_true",
                    help="also run one worker with --overlap off: scaling per core (one worker's overlap uses part "
                         "of a second core, so 1 -> 2 workers cannot be linear against it)")
    ap.add_argument("--pinned", action="store_true",
                    help="also run W workers on W CPUs only (the whole command pinned): scaling in cores, each side "
                         "with exactly its cores (unpinned, one worker's threads and the server use the others)")
    ap.add_argument("--workdir", default=None, help="where files/stores go (kept; default: a temp dir, removed)")
    args = ap.parse_args()
    if not args.default_malloc and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        from flows.runtime import WORKER_ENV

        env = {**os.environ, **{k: v for k, v in WORKER_ENV.items() if k.startswith("MALLOC_")}}
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    n = args.files or (5 if args.quick else 24)
    minutes = args.minutes or (5.0 if args.quick else 60.0)
    runs = args.runs or (1 if args.quick else 3)
    workers = [int(w) for w in args.workers.split(",")]
    roots = {"this": ROOT, **({"compare": args.compare_root.resolve()} if args.compare_root else {})}
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
        runs_of = [(name, w) for name in roots for w in workers]
        steady: dict[tuple, list[float]] = {k: [] for k in runs_of}  # from the run summaries
        marg_wall: dict[tuple, list[float]] = {k: [] for k in runs_of}  # whole command, N-file minus 2-file run
        hashes: dict[str, set[str]] = {name: set() for name in roots}
        no_overlap: list[float] = []  # --per-core: one worker of this code with --overlap off
        pinned: dict[int, list[float]] = {w: [] for w in workers} if args.pinned else {}  # W workers on W CPUs
        for r in range(runs):
            ref.append(statistics.median(reference_chain(files, work / "pkl")))
            inproc.append(in_process(srcn, work / "inproc-store"))
            for name, w in runs_of:
                tag = f"{name}-w{w}"
                wn, sn = cli(srcn, work / f"store{n}-{tag}", w, roots[name])
                steady[name, w].append(sn)
                if args.wall_marginal:
                    marg_wall[name, w].append((wn - cli(src2, work / f"store2-{tag}", w, roots[name])[0]) / (n - 2))
                hashes[name].add(content_hash(work / f"store{n}-{tag}"))
            if args.per_core:
                no_overlap.append(cli(srcn, work / f"store{n}-this-w1-off", 1, ROOT, ("--overlap", "off"))[1])
                hashes["this"].add(content_hash(work / f"store{n}-this-w1-off"))
            for w in pinned:
                pinned[w].append(cli(srcn, work / f"store{n}-this-w{w}-pinned", w, ROOT, cpus=w)[1])
                hashes["this"].add(content_hash(work / f"store{n}-this-w{w}-pinned"))
            print(f"run {r + 1}/{runs}: reference {ref[-1]:.3f} s/file, in-process {inproc[-1]:.3f} s/file, "
                  + ", ".join(f"CLI {k[0]} w={k[1]} {steady[k][-1]:.3f} s/file"
                              + (f" (whole-command marginal {marg_wall[k][-1]:.3f})" if marg_wall[k] else "")
                              for k in runs_of)
                  + (f", CLI this w=1 --overlap off {no_overlap[-1]:.3f} s/file" if no_overlap else "")
                  + "".join(f", CLI this w={w} on {w} CPU(s) {pinned[w][-1]:.3f} s/file" for w in pinned), flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    med_ref = statistics.median(ref)
    print(f"\n{n} TUH-like EDF files x {minutes:g} min (21 EEG + 2 other channels, 256 Hz), {runs} runs, "
          f"{time.perf_counter() - t_start:.0f} s; load average {load0[0]:.1f} before, {load1[0]:.1f} after "
          f"({os.cpu_count()} CPUs)\n")
    print("| pipeline | s per file, min / median / max over runs | reference / this (median) |")
    print("|---|---|---|")
    print(f"| NeuroLM-style MNE chain + pickles (1 process) | {mmm(ref)} | 1.00 |")
    print(f"| `process_batch` in-process (worker's own time) | {mmm(inproc)} | "
          f"{med_ref / statistics.median(inproc):.2f} |")
    for name, w in runs_of:
        label = f"`neurolm ingest --workers {w}`" + (f" ({name}: {roots[name]})" if len(roots) > 1 else "")
        print(f"| {label}, steady state | {mmm(steady[name, w])} | "
              f"**{med_ref / statistics.median(steady[name, w]):.2f}** |")
        if marg_wall[name, w]:
            print(f"| {label}, whole command, N-file minus 2-file run | {mmm(marg_wall[name, w])} | "
                  f"{med_ref / statistics.median(marg_wall[name, w]):.2f} |")
    if no_overlap:
        print(f"| `neurolm ingest --workers 1 --overlap off`, steady state | {mmm(no_overlap)} | "
              f"**{med_ref / statistics.median(no_overlap):.2f}** |")
        for w in workers:
            if w > 1:
                print(f"\nthis: scaling per core, one worker without overlap -> {w} workers, efficiency "
                      f"{statistics.median(no_overlap) / (w * statistics.median(steady['this', w])):.2f}")
    for w in pinned:
        print(f"| `neurolm ingest --workers {w}`, whole command on {w} CPU(s), steady state | {mmm(pinned[w])} | "
              f"**{med_ref / statistics.median(pinned[w]):.2f}** |")
    if 1 in pinned:
        for w in pinned:
            if w > 1:
                print(f"\nthis: scaling in cores, 1 worker on 1 CPU -> {w} workers on {w} CPUs, efficiency "
                      f"{statistics.median(pinned[1]) / (w * statistics.median(pinned[w])):.2f}")
    for name in roots:
        if 1 not in workers:
            break
        m1 = statistics.median(steady[name, 1])
        for w in workers:
            if w > 1:
                print(f"\n{name}: scaling 1 -> {w} workers, efficiency {m1 / (w * statistics.median(steady[name, w])):.2f}")
        print(f"{name}: orchestration per file (CLI w=1 steady state - in-process): {m1 - statistics.median(inproc):+.3f} s")
    print(f"per-run ratios, reference / CLI w={workers[0]}: "
          + ", ".join(f"{a / b:.2f}" for a, b in zip(ref, steady["this", workers[0]])))
    for name in roots:
        print(f"store content hash, {name} ({len(hashes[name])} distinct over its N-file stores): "
              f"{', '.join(sorted(hashes[name]))}")
    distinct = set().union(*hashes.values())
    if len(distinct) != 1:
        raise SystemExit("stores of the same files differ")


if __name__ == "__main__":
    main()
