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


def run_ingest(src: Path, store: Path, env: dict) -> tuple[float, float, float, int]:
    """(max single-process RSS MiB, max tree-sum RSS MiB, wall s, return code) of one ingest."""
    cmd = [str(Path(sys.executable).with_name("neurolm")), "ingest", str(src), "--store", str(store),
           "--workers", "1"]
    peak_one = peak_sum = 0.0
    done = threading.Event()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", default="0.5,1,2,4")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results_ingest_memory.md"))
    ap.add_argument("--label", default="", help="added to the table heading (e.g. 'before streaming')")
    ap.add_argument("--workdir", default=None, help="where files and stores go (default: a temp dir)")
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
            one, tree, wall, rc = run_ingest(src, store, env)
            size_gb = f.stat().st_size / 1e9
            rows.append((h, one, tree, wall, rc, size_gb))
            print(f"{h:g} h: peak RSS {one:.0f} MiB (tree {tree:.0f} MiB), {wall:.1f} s, rc={rc}", flush=True)
            shutil.rmtree(src, ignore_errors=True)
            shutil.rmtree(store, ignore_errors=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"## Peak RSS of `neurolm ingest --workers 1` vs recording length{' (' + args.label + ')' if args.label else ''}",
        "",
        f"Command: `.venv/bin/python bench/bench_ingest_memory.py --hours {args.hours}"
        f"{' --code-root ' + args.code_root if args.code_root != str(ROOT) else ''}` "
        f"({time.strftime('%Y-%m-%d')}, {platform.node() or 'host'}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM). 64-channel EDF at 256 Hz; each run "
        "`neurolm ingest DIR --store S --workers 1` on one file.",
        "",
        "| hours | EDF size (GB) | peak RSS, one process (MiB) | peak RSS, process tree (MiB) | wall (s) | rc |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {h:g} | {s:.2f} | {o:.0f} | {t:.0f} | {w:.1f} | {rc} |" for h, o, t, w, rc, s in rows],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(args.out, "a") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
