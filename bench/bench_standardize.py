"""Benchmark: neurolm.standardize (single-pass FFT) vs NeuroLM's MNE chain, same data, same run.

Run:  .venv/bin/python bench/bench_standardize.py [--quick] [--minutes M] [--channels C]

Threads are pinned to one (OMP/MKL/OpenBLAS set before numpy is imported) and
time is CPU time (``time.process_time``), so the figures are per core. Each
case: synthetic TUH-like EEG (µV float32) at one input rate; ours =
``standardize(raw, sel, cfg)`` including its quality checks; reference =
``mne_reference_chain`` (RawArray -> filter(0.1, 75) -> notch_filter(60) ->
resample(200) -> µV/100), NeuroLM's literal call. Best of ``--repeats``.
Deviation is measured against ``mne_reference_chain(exact_ratio=True)`` (MNE's
resample without its power-of-two length rounding): max |ours - mne| / RMS of
the MNE output, more than 20 s from the ends (also in µV; the store's int16
step is 0.1 µV), more than 2 s from the ends, and everywhere.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neurolm.readers.types import RawRecording  # noqa: E402
from neurolm.standardize import StandardizeConfig, mne_reference_chain, standardize  # noqa: E402
from neurolm.synth import default_ch_names, synth_signal  # noqa: E402
from neurolm.vocab import TUH_23, select_channels  # noqa: E402


def _best_cpu(fn, repeats: int):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def run_case(fs: float, n_ch: int, minutes: float, repeats: int, cfg: StandardizeConfig) -> dict:
    base = TUH_23 if n_ch <= len(TUH_23) else default_ch_names(n_ch)
    names = tuple(f"EEG {n}-REF" for n in base[:n_ch])
    n = int(round(minutes * 60 * fs))
    n -= n % 320  # whole resampling periods at every rate (lcm of 32, 64, 5), so exact_ratio applies
    data = synth_signal(n_ch, fs, n / fs, seed=int(fs), ch_names=names)
    raw = RawRecording(data=np.ascontiguousarray(data, np.float32), sfreq=fs, ch_names=names, format="edf")
    sel = select_channels(names)
    standardize(raw, sel, cfg)  # warm the filter-design cache (a worker designs once per rate)
    t_ours, ours = _best_cpu(lambda: standardize(raw, sel, cfg), repeats)
    t_mne, _ = _best_cpu(lambda: mne_reference_chain(raw, sel, cfg), repeats)
    ref = mne_reference_chain(raw, sel, cfg, exact_ratio=True)
    e = 20 * 200
    rms = float(np.sqrt(np.mean(ref[:, e:-e].astype(np.float64) ** 2)))
    dev = np.abs(ours.data - ref)
    hours = n / fs / 3600
    return {"fs": fs, "n_ch": sel.n_channels, "minutes": n / fs / 60, "ours_s": t_ours, "mne_s": t_mne,
            "ours_h_per_cs": hours / t_ours, "mne_h_per_cs": hours / t_mne, "ratio": t_mne / t_ours,
            "dev_interior": float(dev[:, e:-e].max() / rms), "dev_near": float(dev[:, 400:-400].max() / rms),
            "dev_all": float(dev.max() / rms), "dev_uv": float(dev[:, e:-e].max() * cfg.unit_divisor)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2-minute recordings (smoke run)")
    ap.add_argument("--minutes", type=float, default=None, help="recording length (default 30, quick 2)")
    ap.add_argument("--channels", type=int, default=23)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--rates", default="250,256,500,512,1000")
    args = ap.parse_args()
    minutes = args.minutes or (2.0 if args.quick else 30.0)
    cfg = StandardizeConfig()
    rows = []
    for fs in [float(r) for r in args.rates.split(",")]:
        m = minutes if fs <= 256 else max(minutes / 3, 1.0)  # high rates: same sample count order
        rows.append(run_case(fs, args.channels, m, args.repeats, cfg))
        r = rows[-1]
        print(f"  {fs:g} Hz done: ratio {r['ratio']:.2f}", file=sys.stderr)
    print(f"\nstandardize vs MNE chain, 1 thread, CPU time, best of {args.repeats} "
          f"({platform.processor() or platform.machine()}, numpy {np.__version__})\n")
    print("| input | ch | minutes | ours s | MNE s | ours EEG-h/core-s | MNE EEG-h/core-s | speed-up "
          "| dev/RMS > 20 s from ends | dev µV > 20 s | dev/RMS > 2 s | dev/RMS all |")
    print("|---" * 12 + "|")
    for r in rows:
        print(f"| {r['fs']:g} Hz | {r['n_ch']} | {r['minutes']:.1f} | {r['ours_s']:.3f} | {r['mne_s']:.3f} "
              f"| {r['ours_h_per_cs']:.2f} | {r['mne_h_per_cs']:.2f} | **{r['ratio']:.1f}x** "
              f"| {r['dev_interior']:.1e} | {r['dev_uv']:.4f} | {r['dev_near']:.1e} | {r['dev_all']:.1e} |")
    tot_o = sum(r["ours_s"] for r in rows)
    tot_m = sum(r["mne_s"] for r in rows)
    print(f"\nall cases: ours {tot_o:.2f} core-s, MNE {tot_m:.2f} core-s, speed-up {tot_m / tot_o:.1f}x")


if __name__ == "__main__":
    main()
