"""Benchmark: peak RSS of `neurolm ingest --workers 1` against recording length (64-channel EDF, 256 Hz).

Run:  .venv/bin/python bench/bench_ingest_memory.py [--hours 0.5,1,2,4] [--out bench/results_ingest_memory.md]

For each length: one 64-channel EDF (``neurolm.synth`` signal, written by the project's own
EDF writer ``neurolm.synth.write_edf``). Long files are built from one 30-min file by
repeating its data records and patching the header's record count (so a 24-h file costs
its 2.8 GB of disk but no 24-h array in this process); the file is deleted after its run.
Then ``neurolm ingest DIR --store S --workers 1`` runs as a subprocess while a thread polls
the RSS of every process of its tree (psutil, every 50 ms): ingest forks a child per
batch (``neurolm.ingest.limits``) and that child is the one that reads and standardizes.
Reported: the largest RSS of any one process (the per-worker figure; the forked child's
RSS includes pages it shares with its parent), the largest sum over the tree, and the
wall time of the whole command (start-up of Prefect and Dask included).
Check free disk first: a 24-h row needs ~2.8 GB for the EDF plus ~2.5 GB for the store.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from neurolm.synth import synth_signal, write_edf  # noqa: E402
from neurolm.vocab import VOCAB  # noqa: E402

SFREQ = 256.0
N_CH = 64
BASE_MIN = 30.0  # minutes of distinct signal; longer files repeat its records
LABELS = tuple(VOCAB[:N_CH])  # 10-10 names, all in the channel vocabulary


def base_file(path: Path) -> None:
    data = synth_signal(N_CH, SFREQ, BASE_MIN * 60, seed=0, ch_names=LABELS)
    write_edf(path, data, SFREQ, LABELS)


def make_file(base: Path, path: Path, hours: float) -> None:
    """``hours`` of EDF: the base file's header with the record count patched, its records repeated."""
    raw = base.read_bytes()
    header_bytes = int(raw[184:192].decode().strip())
    n_rec = int(raw[236:244].decode().strip())
    records = raw[header_bytes:]
    want = int(round(hours * 3600))  # 1-s records
    header = bytearray(raw[:header_bytes])
    header[236:244] = f"{want:<8d}".encode()
    rec_bytes = len(records) // n_rec
    with open(path, "wb") as fh:
        fh.write(header)
        left = want
        while left > 0:
            k = min(left, n_rec)
            fh.write(records[: k * rec_bytes])
            left -= k


#: ``--mode worker``: the batch worker alone in a fresh interpreter (discover + ``process_batch``, which
#: forks its bounded child as in a run), without Prefect and Dask start-up: the same per-file peak,
#: minutes less wall time on a loaded machine.
WORKER_SCRIPT = (
    "import sys; from neurolm.ingest import discover, open_store, process_batch; "
    "from neurolm.ingest.limits import FileLimits; "
    "st = open_store(sys.argv[2]); items = [f.item for f in discover(sys.argv[1], 'mem')]; "
    "rows = process_batch(items, st.url, st.version_id, limits=FileLimits(timeout_s=float(sys.argv[3]))); "
    "[print(r['status'], r['reason'], file=sys.stderr) for r in rows if r['status'] != 'ingested']; "
    "sys.exit(0 if all(r['status'] == 'ingested' for r in rows) else 3)"
)
#: per-file time limit of the bench runs (the default 600 s is too short for 24 h on a loaded machine)
FILE_TIMEOUT_S = 7200


def run_ingest(src: Path, store: Path, env: dict, mode: str = "cli") -> tuple[float, float, float, int]:
    """(max single-process RSS MiB, max tree-sum RSS MiB, wall s, return code) of one ingest."""
    if mode == "cli":
        cmd = [str(Path(sys.executable).with_name("neurolm")), "ingest", str(src), "--store", str(store),
               "--workers", "1", "--file-timeout", str(FILE_TIMEOUT_S)]
    else:
        cmd = [sys.executable, "-c", WORKER_SCRIPT, str(src), str(store), str(FILE_TIMEOUT_S)]
    peak_one = peak_sum = 0.0
    done = threading.Event()
    t0 = time.perf_counter()
    # cwd outside any checkout: `python -c` puts the cwd first on sys.path, ahead of PYTHONPATH
    proc = subprocess.Popen(cmd, env=env, cwd=store.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def poll() -> None:
        nonlocal peak_one, peak_sum
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                peak_one = max(peak_one, rss / 2**20)
            peak_sum = max(peak_sum, total / 2**20)
            time.sleep(0.05)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    th.join()
    if proc.returncode:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return peak_one, peak_sum, wall, proc.returncode


def compare_paths(base: Path, work: Path, hours: float) -> str:
    """CPU s of one worker on one ``hours`` file, streamed vs whole-file path, and how far the signals differ."""
    import neurolm.standardize_stream as SS
    from neurolm.ingest import discover, open_store, process_batch
    from neurolm.ingest.limits import FileLimits

    src = work / "cmp_src"
    src.mkdir(exist_ok=True)
    make_file(base, src / f"rec_{hours:g}h.edf", hours)
    items = [f.item for f in discover(str(src), "mem")]
    out, stores = {}, {}
    saved = SS.STREAM_MIN_VALUES
    try:
        for name, threshold in (("whole-file", 2**62), ("streamed", 0), ("whole-file again", 2**62)):
            SS.STREAM_MIN_VALUES = threshold
            store = open_store(str(work / f"cmp_{name.replace(' ', '_')}"))
            t0 = time.process_time()
            row = process_batch(items, store.url, store.version_id, limits=FileLimits(isolate=False))[0]
            out[name] = time.process_time() - t0
            assert row["status"] == "ingested", row["reason"]
            stores[name] = store
    finally:
        SS.STREAM_MIN_VALUES = saved
    rid = items[0].recording_id
    a, b = stores["whole-file"].read_signal(rid), stores["streamed"].read_signal(rid)
    steps = np.abs(np.rint((a - b) / stores["whole-file"].scale))
    shutil.rmtree(src, ignore_errors=True)
    return (f"| {hours:g} | {out['whole-file']:.1f} / {out['whole-file again']:.1f} | {out['streamed']:.1f} | "
            f"{int(steps.max())} | {np.mean(steps > 0):.1e} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", default="0.5,1,2,4")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_ingest_memory.md"))
    ap.add_argument("--label", default="", help="added to the table heading (e.g. 'before streaming')")
    ap.add_argument("--workdir", default=None, help="where files and stores go (default: a temp dir)")
    ap.add_argument("--mode", choices=("cli", "worker"), default="cli",
                    help="cli: `neurolm ingest` (Prefect + Dask); worker: the batch worker alone (see WORKER_SCRIPT)")
    ap.add_argument("--compare-hours", type=float, default=0.0,
                    help="also time one worker (in this process, CPU s) on a file this long, streamed vs whole-file")
    ap.add_argument("--code-root", default=str(ROOT),
                    help="checkout whose code the CLI runs (e.g. `git archive` of the commit before a change)")
    args = ap.parse_args()
    hours = [float(h) for h in args.hours.split(",")]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="neurolm-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(args.code_root).resolve()), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="neurolm-prefect-"))
    base = work / "base.edf"
    base_file(base)
    rows = []
    try:
        for h in hours:
            src = work / f"src_{h:g}h"
            src.mkdir(exist_ok=True)
            f = src / f"rec_{h:g}h.edf"
            make_file(base, f, h)
            store = work / f"store_{h:g}h"
            one, tree, wall, rc = run_ingest(src, store, env, args.mode)
            size_gb = f.stat().st_size / 1e9
            rows.append((h, one, tree, wall, rc, size_gb))
            print(f"{h:g} h: peak RSS {one:.0f} MiB (tree {tree:.0f} MiB), {wall:.1f} s, rc={rc}", flush=True)
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(store, ignore_errors=True)
        cmp_row = compare_paths(base, work, args.compare_hours) if args.compare_hours else ""
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    what = ("`neurolm ingest DIR --store S --workers 1`" if args.mode == "cli" else
            "the batch worker alone (`process_batch` in a fresh interpreter, forked bounded child)")
    lines = [
        f"## Peak RSS of `neurolm ingest --workers 1` vs recording length{' (' + args.label + ')' if args.label else ''}",
        "",
        f"Command: `.venv/bin/python bench/bench_ingest_memory.py --hours {args.hours} --mode {args.mode}"
        f"{' --compare-hours %g' % args.compare_hours if args.compare_hours else ''}"
        f"{' --code-root ' + args.code_root if args.code_root != str(ROOT) else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {platform.node() or 'host'}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM). 64-channel EDF at 256 Hz; each run "
        f"{what} on one file.",
        "",
        "| hours | EDF size (GB) | peak RSS, one process (MiB) | peak RSS, process tree (MiB) | wall (s) | rc |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {h:g} | {s:.2f} | {o:.0f} | {t:.0f} | {w:.1f} | {rc} |" for h, o, t, w, rc, s in sorted(rows)],
        "",
    ]
    if cmp_row:
        lines += ["One worker in this process (`process_batch`, no fork), same file, CPU s, whole-file path run "
                  "before and after the streamed one; stored signals compared in int16 steps:", "",
                  "| hours | whole-file CPU s (before / after) | streamed CPU s | max diff (steps) | share of samples differing |",
                  "|---:|---:|---:|---:|---:|", cmp_row, ""]
    text = "\n".join(lines)
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
