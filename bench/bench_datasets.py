"""TUAB-style downstream preparation: `ingest_dataset` against a NeuroLM-style per-file script.

Both run in one process on the same synthetic TUAB layout (TUH labels, 250 Hz,
23 EEG + 2 non-EEG channels). The reference re-creates what NeuroLM's
``prepare_TUAB.py`` does, written from NEUROLM_REFERENCE §1.4: MNE
``read_raw_edf(preload=True)``, pick and reorder the 23 channels,
``filter(0.1, 75)``, ``notch_filter(50)``, ``resample(200)``, µV, then one
``.npy`` file per 10-s window (pickle in the original; this project never
writes pickles). Ours: adapter discovery, the batch worker (single-pass FFT
standardize, int16 Zarr, commit markers), labels and splits, tables. Both
produce the same number of windows, which the script checks.

Usage: ``python bench/bench_datasets.py [--files 8] [--minutes 5]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from neurolm.datasets.synth.common import write_edf_file  # noqa: E402
from neurolm.datasets.synth.tuh import TUH_LABELS  # noqa: E402
from neurolm.vocab import TUH_23  # noqa: E402


def make_layout(root: Path, n_files: int, minutes: float) -> list[Path]:
    paths = []
    for k in range(n_files):
        official = "eval" if k % 4 == 3 else "train"
        label = "abnormal" if k % 2 else "normal"
        sub = "aaaaaa" + "abcdefghijklmnopqrstuvwxyz"[k // 26] + "abcdefghijklmnopqrstuvwxyz"[k % 26]
        p = root / "edf" / official / label / "01_tcp_ar" / f"{sub}_s001_t000.edf"
        paths.append(write_edf_file(p, TUH_LABELS, 250.0, minutes * 60, k))
    return paths


def reference(paths: list[Path], out: Path) -> int:
    import mne

    mne.set_log_level("ERROR")
    wanted = [f"EEG {c}-REF" for c in TUH_23]
    n = 0
    for p in paths:
        raw = mne.io.read_raw_edf(p, preload=True)
        raw.pick(wanted)
        raw.reorder_channels(wanted)
        raw.filter(l_freq=0.1, h_freq=75.0)
        raw.notch_filter(50.0)
        raw.resample(200)
        data = raw.get_data(units="uV")
        for i in range(data.shape[1] // 2000):
            np.save(out / f"{p.stem}_{i}.npy", data[:, i * 2000:(i + 1) * 2000])
            n += 1
    return n


def ours(root: Path, store: Path) -> int:
    from neurolm.datasets.ingest import ingest_dataset, make_dataset_params

    s = ingest_dataset(make_dataset_params(dataset="tuab", root=str(root), store=str(store)))
    return int(s["n_labels"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--minutes", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tuab"
        paths = make_layout(root, args.files, args.minutes)
        hours = args.files * args.minutes / 60
        (Path(tmp) / "ref").mkdir()
        t0 = time.perf_counter()
        n_ref = reference(paths, Path(tmp) / "ref")
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_ours = ours(root, Path(tmp) / "store")
        t_ours = time.perf_counter() - t0
        assert n_ref == n_ours, (n_ref, n_ours)
        print(f"{args.files} files x {args.minutes:g} min (23+2 ch, 250 Hz), {n_ours} windows of 10 s")
        print(f"reference (MNE per file, .npy per window): {t_ref:7.2f} s  {hours / t_ref * 3600:8.1f} h/h")
        print(f"ours (ingest_dataset, one process):        {t_ours:7.2f} s  {hours / t_ours * 3600:8.1f} h/h")
        print(f"speed-up: {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
