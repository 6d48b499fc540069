"""Benchmark: neurolm's numpy EDF/BDF reader vs MNE, same files, same run.

Run:  .venv/bin/python bench/bench_readers.py [--quick]

For each case the synthetic file is written once, read once to warm the page
cache, then each reader runs `--repeats` times and the best time is kept.
MNE gets its best variant: min(read_raw_*(preload=True) + get_data,
read_raw_*(preload=False).get_data(picks)). Both produce µV arrays (ours
float32, MNE float64); values are checked equal (rtol 1e-5) before timing
counts. Prints a markdown table with the speed-up ratio (MNE time / ours).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import mne
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neurolm.readers import read_header, read_recording  # noqa: E402
from neurolm.synth import default_ch_names, synth_signal, write_recording  # noqa: E402


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _mne_data(path: Path, picks):
    raw = mne.io.read_raw(path, preload=False, verbose="error")
    return raw.get_data(picks=picks, units="uV")


def _mne_preload(path: Path, picks):
    raw = mne.io.read_raw(path, preload=True, verbose="error")
    return raw.get_data(picks=picks, units="uV")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter files (CI smoke run)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    minutes = 5 if args.quick else 60
    cases = [  # (name, fmt, n_ch, sfreq, minutes, picks)
        ("EDF 23ch 256Hz all", "edf", 23, 256.0, minutes, None),
        ("EDF 23ch 256Hz pick 4", "edf", 23, 256.0, minutes, ["O1", "O2", "C3", "C4"]),
        ("BDF 64ch 512Hz all", "bdf", 64, 512.0, minutes / 6, None),
        ("BDF 64ch 512Hz pick 8", "bdf", 64, 512.0, minutes / 6, list(default_ch_names(64)[:8])),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="neurolm-bench-") as tmp:
        for name, fmt, n_ch, sfreq, mins, picks in cases:
            names = list(default_ch_names(n_ch))
            one_min = synth_signal(n_ch, sfreq, 60, seed=0, ch_names=names)
            data = np.tile(one_min, (1, max(1, int(round(mins)))))
            path = write_recording(Path(tmp) / f"b.{fmt}", fmt, data, sfreq, names)
            ours = read_recording(path, picks=picks).data
            ref = _mne_data(path, picks)
            np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-3)
            t_ours = _best(lambda: read_recording(path, picks=picks), args.repeats)
            t_mne = min(
                _best(lambda: _mne_preload(path, picks), args.repeats),
                _best(lambda: _mne_data(path, picks), args.repeats),
            )
            t_hdr = _best(lambda: read_header(path), args.repeats)
            t_mne_hdr = _best(lambda: mne.io.read_raw(path, preload=False, verbose="error"), args.repeats)
            hours = data.shape[1] / sfreq / 3600
            rows.append((name, f"{hours * 60:.0f} min", t_ours, t_mne, t_hdr, t_mne_hdr))
            del data, ours, ref
    print(f"mne {mne.__version__}, numpy {np.__version__}, best of {args.repeats}")
    print("| case | length | neurolm (s) | MNE (s) | speed-up | header neurolm (ms) | header MNE (ms) | header speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name, length, a, b, h, hm in rows:
        print(f"| {name} | {length} | {a:.3f} | {b:.3f} | {b / a:.1f}x | {h * 1e3:.2f} | {hm * 1e3:.2f} | {hm / h:.1f}x |")


if __name__ == "__main__":
    main()
