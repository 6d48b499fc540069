"""What a run's table write costs as the archive grows (issue 15: the client's share of an ingest run).

An ingest run folds each batch's rows into the store's tables and rewrites them (catalog, recordings,
windows) every ``table_flush_s`` and at the end. The windows table grows with the archive (a 1-h
21-channel recording has 74 windows), so on a large archive the write costs seconds of the client's
CPU -- the process that also hands out work and collects results.

Reference in the same run: the windows table built window by window through ``recording_windows``
(the code before 2026-12-07, re-typed here), against ``build_windows`` (array operations); both
tables are checked equal. Then a whole table write (``IngestState.flush``) at each size, from the
rows of a small real ingest replicated under new ids.

    .venv/bin/python bench/bench_ingest_tables.py [--sizes 1000,5000,20000,70000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from neurolm.ingest import IngestState, discover, open_store, process_batch  # noqa: E402
from neurolm.ingest.windows import WINDOW_COLUMNS, build_windows, recording_windows  # noqa: E402
from neurolm.synth import default_ch_names, synth_signal, write_recording  # noqa: E402


def windows_one_by_one(recordings: pd.DataFrame, crop_end_s: float = 10.0, exclude_heldout: bool = True) -> pd.DataFrame:
    """The windows table row by row (reference: the loop ``build_windows`` replaced)."""
    rows: list[tuple[str, int, int, str]] = []
    for rid, n_ch, n, split in recordings[["recording_id", "n_channels", "n_samples", "split"]].itertuples(
            index=False, name=None):
        if exclude_heldout and split == "heldout":
            continue
        rows.extend((rid, s, ln, split) for s, ln in recording_windows(int(n_ch), int(n), crop_end_s))
    df = pd.DataFrame(rows, columns=WINDOW_COLUMNS).astype({"start": "int64", "length": "int64"})
    return df.sort_values(["recording_id", "start"], kind="stable").reset_index(drop=True)


def synthetic_recordings(n: int, seed: int = 0) -> pd.DataFrame:
    """n recordings like a TUH archive: 19-23 channels, 20 min to 2 h at 200 Hz, shuffled ids."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "recording_id": [f"tuh-{i:08d}" for i in rng.permutation(n)],
        "n_channels": rng.choice([19, 21, 23], n),
        "n_samples": rng.integers(20 * 60 * 200, 2 * 3600 * 200, n),
        "split": rng.choice(["train", "train", "train", "val", "test", "heldout"], n),
    }).astype({"recording_id": "str", "split": "str"})


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def small_store(root: Path) -> str:
    """A store with 4 real 5-minute recordings: their rows, replicated with archive-like lengths, make the
    tables of the whole-write figures."""
    ch = default_ch_names(21)
    for i in range(4):
        write_recording(root / "src" / f"s{i}" / "r.edf", "edf", synth_signal(21, 256.0, 300, seed=i, ch_names=ch),
                        256.0, ch)
    store = open_store(str(root / "store"))
    state = IngestState.load(store, "bench")
    diff = state.plan(discover(str(root / "src"), "b"), "b")
    state.add(process_batch([f.item for f in diff.to_ingest], store.url, store.version_id, run_id="bench"))
    state.finalize()
    return store.url


def replicated_flush(store_url: str, n: int, work: Path, repeat: int, windows_fn=build_windows) -> float:
    """CPU seconds of one IngestState.flush whose tables hold n recordings (min over repeats), the windows
    table built by ``windows_fn``."""
    import neurolm.ingest as ingest_mod

    copy = work / f"store-{n}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(store_url, copy)
    state = IngestState.load(open_store(str(copy)), "bench")
    reps = -(-n // len(state.recordings))

    def grow(df: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for k in range(reps):
            d = df.copy()
            d["recording_id"] = d["recording_id"] + f"-{k}"
            if "path" in d:
                d["path"] = d["path"] + f".{k}"
            parts.append(d)
        return pd.concat(parts, ignore_index=True).iloc[:n]

    state.catalog, state.recordings = grow(state.catalog), grow(state.recordings)
    lengths = synthetic_recordings(n)["n_samples"].to_numpy()  # archive-like lengths (the real rows are 5 min)
    state.recordings["n_samples"] = lengths
    state.recordings["duration_s"] = lengths / 200.0

    def write() -> None:
        state._dirty = True
        state.flush(force=True)

    ingest_mod.build_windows = windows_fn
    try:
        return best(write, repeat)
    finally:
        ingest_mod.build_windows = build_windows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,5000,20000,70000", help="recordings in the tables")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-tables-") as tmp:
        work = Path(tmp)
        url = small_store(work)
        print("| recordings | windows | windows table, one by one (CPU s) | `build_windows` (CPU s) | ratio | "
              "whole table write, `IngestState.flush`, before / now (CPU s) |")
        print("|---:|---:|---:|---:|---:|---:|")
        ratios = []
        for n in sizes:
            rec = synthetic_recordings(n)
            new, old = build_windows(rec), windows_one_by_one(rec)
            pd.testing.assert_frame_equal(new, old)
            t_old = best(lambda: windows_one_by_one(rec), args.repeat)
            t_new = best(lambda: build_windows(rec), args.repeat)
            ratios.append(t_old / t_new)
            f_old = replicated_flush(url, n, work, args.repeat, windows_one_by_one)
            f_new = replicated_flush(url, n, work, args.repeat)
            print(f"| {n:,} | {len(new):,} | {t_old:.3f} | {t_new:.3f} | **{t_old / t_new:.1f}x** | "
                  f"{f_old:.3f} / {f_new:.3f} |",
                  flush=True)
        print(f"\nwindows tables equal (pandas.testing) at every size; ratio median {statistics.median(ratios):.1f}x; "
              f"min of {args.repeat} repeats each")


if __name__ == "__main__":
    main()
