"""`write_recording`: one call to write [n_ch, n] µV in any supported format.

Stable API reused by the dataset-fixture code (neurolm.datasets.synth):
keep the signature backwards compatible.

Formats and what "equal to what was written" means for each:
- edf/bdf/gdf: integer samples (cnt: int32 at 0.001 µV); error <= half a quantisation step of the
  per-channel physical range (see `edf_writer.quantisation_step`).
- fif/brainvision/eeglab: float32 samples; relative error ~1e-7.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from neurolm.errors import ConfigError
from neurolm.synth.cnt_writer import write_cnt
from neurolm.synth.edf_writer import write_edf
from neurolm.synth.gdf_writer import write_gdf

WRITABLE_FORMATS = ("edf", "bdf", "gdf", "fif", "brainvision", "eeglab", "cnt")
#: File extension written for each format (the file to hand to a reader).
EXTENSION = {"edf": ".edf", "bdf": ".bdf", "gdf": ".gdf", "fif": "_raw.fif", "brainvision": ".vhdr", "eeglab": ".set", "cnt": ".cnt"}


def mne_ch_type(label: str) -> str:
    """MNE channel type from a label (ECG/EKG, EOG, EMG, PHOTIC/stim-like -> misc)."""
    up = label.upper()
    if "ECG" in up or "EKG" in up:
        return "ecg"
    if "EOG" in up:
        return "eog"
    if "EMG" in up:
        return "emg"
    if "PHOTIC" in up:
        return "misc"
    return "eeg"


def _mne_raw(data_uv: np.ndarray, sfreq: float, ch_names: Sequence[str], meas_date, mains_hz):
    import mne

    info = mne.create_info(list(ch_names), float(sfreq), [mne_ch_type(c) for c in ch_names], verbose="error")
    raw = mne.io.RawArray(np.asarray(data_uv, dtype=np.float64) * 1e-6, info, verbose="error")
    if meas_date is not None:
        raw.set_meas_date(meas_date if meas_date.tzinfo else meas_date.replace(tzinfo=UTC))
    if mains_hz:
        raw.info["line_freq"] = float(mains_hz)
    return raw


def write_recording(
    path: str | os.PathLike,
    fmt: str,
    data_uv: np.ndarray,
    sfreq: float,
    ch_names: Sequence[str],
    *,
    meas_date: datetime | None = None,
    mains_hz: float | None = None,
    ch_sfreqs: Sequence[float] | None = None,
) -> Path:
    """Write `data_uv` (float µV, [n_ch, n]) to `path` as `fmt`; return the file to read.

    For BrainVision `path` names the .vhdr (the .vmrk/.eeg go next to it).
    `ch_sfreqs` (EDF/BDF only) writes row i at its own rate by decimating it
    from `sfreq` — the mixed-rate case real EDFs have.
    """
    if fmt not in WRITABLE_FORMATS:
        raise ConfigError(f"cannot write format {fmt!r}; choose from {', '.join(WRITABLE_FORMATS)}")
    data = np.asarray(data_uv)
    if data.ndim != 2 or data.shape[0] != len(ch_names) or data.shape[1] == 0:
        raise ConfigError(f"data shape {data.shape} does not match {len(ch_names)} channel names")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("edf", "bdf"):
        if ch_sfreqs is not None:
            rows = [data[i, :: int(round(sfreq / f))] for i, f in enumerate(ch_sfreqs)]
            write_edf(path, rows, list(ch_sfreqs), ch_names, bdf=fmt == "bdf", meas_date=meas_date)
        else:
            write_edf(path, data, sfreq, ch_names, bdf=fmt == "bdf", meas_date=meas_date)
    elif fmt == "gdf":
        write_gdf(path, data, sfreq, ch_names, meas_date=meas_date)
    elif fmt == "fif":
        _mne_raw(data, sfreq, ch_names, meas_date, mains_hz).save(path, fmt="single", overwrite=True, verbose="error")
    elif fmt == "brainvision":
        import pybv

        if path.suffix != ".vhdr":
            raise ConfigError("BrainVision path must end in .vhdr")
        pybv.write_brainvision(
            data=np.asarray(data, dtype=np.float64) * 1e-6, sfreq=float(sfreq), ch_names=list(ch_names),
            fname_base=path.stem, folder_out=str(path.parent), overwrite=True, unit="µV",
            fmt="binary_float32", meas_date=meas_date.replace(tzinfo=UTC) if meas_date else None,
        )  # fmt: skip
    elif fmt == "cnt":
        write_cnt(path, data, sfreq, ch_names, meas_date=meas_date)
    else:  # eeglab
        from eeglabio.raw import export_set

        export_set(str(path), np.asarray(data, dtype=np.float64) * 1e-6, float(sfreq), list(ch_names), precision="single")
    return path
