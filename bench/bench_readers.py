"""Benchmark: neurolm's numpy EDF/BDF reader vs pyedflib vs MNE, same files, same run.

Run:  .venv/bin/python bench/bench_readers.py [--quick] [--repeats 7]

For each case the synthetic file is written once (pyedflib, via
`write_recording`), read once by every reader to warm the page cache and to
check the values agree, then the readers take turns (`--repeats` rounds, so
machine noise hits all of them alike). Min and median per reader are printed.

What is timed, per reader, is the same job: all (or the picked) channels of
the file to one float32 µV array [n_ch, n_samples].
- neurolm: `read_recording(path, picks)`.
- pyedflib: `EdfReader` + `readSignal(i)` per channel (physical values,
  float64) × the unit's µV factor, stored into a float32 array.
- MNE: the better of `read_raw(preload=True).get_data` and
  `read_raw(preload=False).get_data(picks)`, in µV (float64).
The ratio columns are other reader's median / neurolm's median (> 1: ours faster).
Also: `write_recording(..., "edf")` time for the 60-min file (pyedflib writer).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mne
import numpy as np
import pyedflib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neurolm.readers import read_header, read_recording  # noqa: E402
from neurolm.readers.edf_header import UNIT_TO_UV  # noqa: E402
from neurolm.synth import default_ch_names, synth_signal, write_recording  # noqa: E402


def pyedflib_read(path: Path, picks) -> np.ndarray:
    """All (or picked) channels as float32 µV through pyedflib's readSignal."""
    with pyedflib.EdfReader(str(path)) as f:
        labels = f.getSignalLabels()
        idx = [labels.index(p) for p in picks] if picks else list(range(f.signals_in_file))
        out = np.empty((len(idx), int(f.getNSamples()[idx[0]])), dtype=np.float32)
        for row, i in enumerate(idx):
            out[row] = f.readSignal(i) * UNIT_TO_UV[f.getPhysicalDimension(i).strip().lower()]
    return out


def mne_lazy(path: Path, picks) -> np.ndarray:
    return mne.io.read_raw(path, preload=False, verbose="error").get_data(picks=picks, units="uV")


def mne_preload(path: Path, picks) -> np.ndarray:
    return mne.io.read_raw(path, preload=True, verbose="error").get_data(picks=picks, units="uV")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="shorter files (CI smoke run)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--no-mne", action="store_true", help="skip MNE (the slowest reader)")
    args = ap.parse_args()
    minutes = 5 if args.quick else 60
    cases = [  # (name, fmt, n_ch, sfreq, minutes, picks)
        ("EDF 23ch 256Hz all", "edf", 23, 256.0, minutes, None),
        ("EDF 23ch 256Hz pick 4", "edf", 23, 256.0, minutes, ["O1", "O2", "C3", "C4"]),
        ("BDF 64ch 512Hz all", "bdf", 64, 512.0, minutes / 6, None),
        ("BDF 64ch 512Hz pick 8", "bdf", 64, 512.0, minutes / 6, list(default_ch_names(64)[:8])),
    ]
    rows, write_s = [], None
    with tempfile.TemporaryDirectory(prefix="neurolm-bench-") as tmp:
        for name, fmt, n_ch, sfreq, mins, picks in cases:
            names = list(default_ch_names(n_ch))
            one_min = synth_signal(n_ch, sfreq, 60, seed=0, ch_names=names)
            data = np.tile(one_min, (1, max(1, int(round(mins)))))
            path = Path(tmp) / f"b.{fmt}"
            t_write = _timed(lambda: write_recording(path, fmt, data, sfreq, names))
            if fmt == "edf" and write_s is None:
                write_s = (t_write, data.shape[1] / sfreq / 60)
            ours = read_recording(path, picks=picks).data
            np.testing.assert_allclose(pyedflib_read(path, picks), ours, rtol=1e-6, atol=1e-3)
            readers = {"neurolm": lambda: read_recording(path, picks=picks), "pyedflib": lambda: pyedflib_read(path, picks)}
            if not args.no_mne:
                np.testing.assert_allclose(mne_lazy(path, picks), ours, rtol=1e-5, atol=1e-3)
                readers["mne_preload"] = lambda: mne_preload(path, picks)
                readers["mne_lazy"] = lambda: mne_lazy(path, picks)
            times: dict[str, list[float]] = {k: [] for k in readers}
            for _ in range(args.repeats):  # interleaved rounds
                for k, fn in readers.items():
                    times[k].append(_timed(fn))
            if not args.no_mne:  # MNE gets its better variant
                best = min(("mne_preload", "mne_lazy"), key=lambda k: statistics.median(times[k]))
                times["mne"] = times.pop(best)
                times.pop("mne_preload" if best == "mne_lazy" else "mne_lazy")
            t_hdr = min(_timed(lambda: read_header(path)) for _ in range(args.repeats))
            rows.append((name, f"{data.shape[1] / sfreq / 60:.0f} min", times, t_hdr))
            del data, ours
    print(f"pyedflib {pyedflib.__version__}, mne {mne.__version__}, numpy {np.__version__}; "
          f"{args.repeats} interleaved rounds; times in s as min / median")  # fmt: skip
    head = "| case | length | neurolm | pyedflib | pyedflib/neurolm (median) |"
    sep = "|---|---|---|---|---|"
    if not args.no_mne:
        head += " MNE | MNE/neurolm (median) |"
        sep += "---|---|"
    print(head + " header neurolm (ms) |")
    print(sep + "---|")
    for name, length, t, hdr in rows:
        med = {k: statistics.median(v) for k, v in t.items()}
        cell = {k: f"{min(v):.3f} / {med[k]:.3f}" for k, v in t.items()}
        line = f"| {name} | {length} | {cell['neurolm']} | {cell['pyedflib']} | {med['pyedflib'] / med['neurolm']:.1f}x |"
        if "mne" in t:
            line += f" {cell['mne']} | {med['mne'] / med['neurolm']:.1f}x |"
        print(line + f" {hdr * 1e3:.2f} |")
    if write_s:
        print(f"\nwrite_recording(edf) of {write_s[1]:.0f} min x 23 ch x 256 Hz (pyedflib writer): {write_s[0]:.2f} s")


if __name__ == "__main__":
    main()
