"""Where one file's time goes on the ingestion path, stage by stage (CPU time, cProfile).

Run:  .venv/bin/python bench/profile_ingest_file.py [--minutes 60] [--files 3]

Generates TUH-like EDFs (21 EEG + 2 other channels, 256 Hz, ``--minutes`` long),
then does in this process what one `neurolm ingest` worker does per file --
discovery and catalog diff, ``process_batch`` (stat + content hash, header and
channel selection, read, standardize, quantize + compress + write, commit marker)
-- and what the client does with the returned rows (``IngestState.add``, a table
flush), under ``cProfile`` with a CPU-time clock (``time.process_time``: the
machine's load does not inflate it). The standardizer's stager thread (FFT blocks
laid out ahead) runs inline here, so cProfile sees every stage. The first file is processed before profiling
(imports, filter design: once per worker). Prefect task bookkeeping and the Dask
transfer are what ``bench/bench_ingest_cli.py`` measures as "orchestration per
file" (CLI marginal minus in-process time); they do not run here.

``--malloc`` shows the figure without/with the glibc settings Dask workers get
(``flows.runtime.WORKER_ENV``): it re-runs this script in a child process with and
without them.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# stage -> (file suffix, function name) whose cumulative CPU time is that stage
STAGES = [
    ("discovery + catalog diff (per file)", [("neurolm/ingest/discover.py", "discover"),
                                             ("neurolm/ingest/__init__.py", "plan")]),
    ("stat + source content hash", [("neurolm/ingest/worker.py", "_stat"), ("neurolm/ingest/catalog.py", "content_hash")]),
    ("header + channel selection", [("neurolm/readers/__init__.py", "read_header"), ("neurolm/ingest/worker.py", "_select"),
                                    ("neurolm/ingest/layouts.py", "le_montage_reason")]),
    ("read (EDF decode to float32 µV)", [("neurolm/readers/__init__.py", "read_recording")]),
    ("standardize: FFTs", [("scipy/fft/_basic_backend.py", "rfft"), ("scipy/fft/_basic_backend.py", "irfft")]),
    ("standardize: rest (copy, quality, reflect, scale)", [("neurolm/standardize.py", "standardize")]),
    ("quantize", [("storage/signal_codec.py", "quantize")]),
    ("compress + chunk writes", [("storage/signal_codec.py", "put"), ("zarr/core/array.py", "__setitem__")]),
    ("array metadata (zarr create_array)", [("zarr/api/synchronous.py", "create_array")]),
    ("int16 checksum", [("storage/signal_codec.py", "checksum")]),
    ("commit marker (JSON, atomic)", [("storage/fs.py", "write_json_atomic")]),
    ("rows -> tables (IngestState.add + flush)", [("neurolm/ingest/__init__.py", "add"),
                                                  ("neurolm/ingest/__init__.py", "flush")]),
]


def _cum(stats: pstats.Stats, targets: list[tuple[str, str]]) -> float:
    total = 0.0
    for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if any(file.endswith(f) and name == n for f, n in targets):
            total += ct
    return total


class _Inline:
    """Runs each task at once on the calling thread."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        done: Future = Future()
        done.set_result(fn(*args))
        return done


def _stager_inline() -> None:
    """The standardizer's stager (FFT blocks laid out ahead on a thread) on this thread: cProfile sees one thread."""
    import neurolm.standardize as S

    S._stager = lambda: _Inline()


def profile(minutes: float, n_files: int, top: int = 0) -> None:
    from bench_ingest_cli import make_files, reference_chain
    from neurolm.ingest import IngestState, discover, make_batches, open_store, process_batch
    from neurolm.ingest.limits import FileLimits

    IN_PROCESS = FileLimits(isolate=False)  # the per-file path itself; the fork per batch is timed by the CLI bench
    _stager_inline()

    work = Path(tempfile.mkdtemp(prefix="neurolm-profile-"))
    try:
        make_files(work / "edf", n_files + 1, minutes)
        # warm-up: imports, filter design, first-touch of the allocator
        warm = open_store(str(work / "warm"))
        items = [f.item for f in discover(str(work / "edf"), "p")]
        wstate = IngestState.load(warm, "warm")
        wstate.plan(discover(str(work / "edf"), "p"), "p")
        wstate.add(process_batch(items[:1], warm.url, warm.version_id, limits=IN_PROCESS))
        wstate.flush(force=True)  # imports of the table path (pandera, pyarrow): once per run
        shutil.rmtree(work / "edf" / "aaaaa000")
        store = open_store(str(work / "store"))
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        state = IngestState.load(store, "profile")
        diff = state.plan(discover(str(work / "edf"), "p"), "p")
        for batch in make_batches(diff.to_ingest, 8):
            state.add(process_batch(batch, store.url, store.version_id, limits=IN_PROCESS))
        state.flush(force=True)
        prof.disable()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        edfs = sorted((work / "edf").rglob("*.edf"))
        reference_chain(edfs[:1], work / "pkl")  # warm: imports, filter design
        c0 = time.process_time()
        reference_chain(edfs, work / "pkl")
        ref_cpu = (time.process_time() - c0) / len(edfs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = [(name, _cum(stats, t) / n_files) for name, t in STAGES]
    # nested stages: the FFTs, quantize, writes and checksum run inside standardize / write_recording
    fft = rows[4][1]
    rows[5] = (rows[5][0], rows[5][1] - fft)
    per = total / n_files
    print(f"\n{n_files} files x {minutes:g} min (21 EEG + 2 other channels, 256 Hz), CPU time per file "
          f"(user {(ru1.ru_utime - ru0.ru_utime) / n_files:.3f} s + system {(ru1.ru_stime - ru0.ru_stime) / n_files:.3f} s, "
          f"{(ru1.ru_minflt - ru0.ru_minflt) / n_files:.0f} page faults), "
          f"MALLOC_MMAP_THRESHOLD_={os.environ.get('MALLOC_MMAP_THRESHOLD_', 'unset')}\n")
    print("| stage | CPU s per file | share |")
    print("|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.3f} | {100 * sec / per:.0f} % |")
    print(f"| everything else (Python glue, logging, small I/O) | {per - sum(s for _, s in rows):.3f} | "
          f"{100 * (per - sum(s for _, s in rows)) / per:.0f} % |")
    print(f"| **total** | **{per:.3f}** | 100 % |")
    print(f"\nreference (NeuroLM-style MNE chain + pickles, same files, same process): {ref_cpu:.3f} CPU s per file "
          f"= **{ref_cpu / per:.2f}x** this total")
    if top:
        stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--files", type=int, default=3, help="files profiled (after one warm-up file)")
    ap.add_argument("--top", type=int, default=0, help="also print the N functions with the most own CPU time")
    ap.add_argument("--malloc", action="store_true", help="run without and with the Dask workers' glibc settings")
    ap.add_argument("--root", type=Path, default=None,
                    help="with --malloc: profile the code of this checkout (e.g. before a change) too")
    args = ap.parse_args()
    if not args.malloc:
        profile(args.minutes, args.files, args.top)
        return
    from flows.runtime import WORKER_ENV

    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    tuned = {k: v for k, v in WORKER_ENV.items() if k.startswith("MALLOC_")}
    for root in [ROOT] + ([args.root.resolve()] if args.root else []):
        for env in (base, {**base, **tuned}):
            print(f"\n## code from {root}", flush=True)
            env = {**env, "PYTHONPATH": os.pathsep.join([str(root), env.get("PYTHONPATH", "")])}
            script = root / "bench" / "profile_ingest_file.py"
            if not script.exists():
                shutil.copy(__file__, script)
                shutil.copy(Path(__file__).with_name("bench_ingest_cli.py"), root / "bench" / "bench_ingest_cli.py")
            subprocess.run([sys.executable, str(script), "--minutes", str(args.minutes), "--files", str(args.files)],
                           env=env, check=True)


if __name__ == "__main__":
    main()
