"""Multi-format EEG readers: one entry point, float32 µV out, one error type.

`detect_format` decides by content, `read_header` never loads samples and
`read_recording` loads only the picked channels. EDF/EDF+/BDF use our numpy
path (`edf_header`, `edf_data`); GDF, FIF, BrainVision, EEGLAB and CNT use MNE
(`mne_io`). Every problem with a source file raises
`neurolm.errors.BadInputError` with a one-line reason, so ingestion can
quarantine the file and carry on.

Mixed per-channel rates (EDF/BDF/GDF) are brought to the highest rate among
the *picked* channels with polyphase resampling (`scipy.signal.resample_poly`)
and flagged `mixed_sfreq=True`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurolm.errors import BadInputError, describe
from neurolm.readers.detect import COMPANION_EXTENSIONS, EXTENSIONS, FORMATS, detect_format
from neurolm.readers.edf_data import pick_indices, read_edf_data
from neurolm.readers.edf_header import parse_edf_header
from neurolm.readers.types import RawRecording, RecordingHeader
from neurolm.readers import mne_io

__all__ = [
    "COMPANION_EXTENSIONS", "EXTENSIONS", "FORMATS", "MAX_NONFINITE_FRACTION",
    "RawRecording", "RecordingHeader", "detect_format", "read_header", "read_recording",
]  # fmt: skip

#: Above this fraction of NaN/inf samples a recording is rejected; below it the
#: standardizer repairs the gaps and flags the recording "nan_repaired".
MAX_NONFINITE_FRACTION = 0.25


def _header_edf(path: str, fmt: str) -> RecordingHeader:
    lay = parse_edf_header(path, bdf=fmt == "bdf")
    rates = tuple(lay.sfreq_of(i) for i in lay.signal_idx)
    n_samples = lay.n_records * max(lay.ns[i] for i in lay.signal_idx)
    return RecordingHeader(
        path=path, format=fmt, ch_names=tuple(lay.labels[i] for i in lay.signal_idx),
        ch_sfreqs=rates, n_samples=n_samples, meas_date=lay.meas_date,
        ch_units=tuple(lay.units[i] for i in lay.signal_idx) if lay.units else (),
    )  # fmt: skip


def _meas_date(raw) -> object:
    date = raw.info.get("meas_date")
    return date.replace(tzinfo=None) if date is not None else None


def read_header(path: str | os.PathLike, cnt_format: str = "auto") -> RecordingHeader:
    """Channel labels, rates, length and date of `path`, without reading samples.

    `cnt_format`: sample width of Neuroscan CNT files ("auto", "int16", "int32"; see `mne_io.open_raw`).
    """
    path = str(Path(path))
    fmt = detect_format(path)
    if fmt in ("edf", "bdf"):
        try:
            return _header_edf(path, fmt)
        except OSError as exc:
            raise BadInputError(f"{fmt} header read failed: {describe(exc)}") from None

    with mne_io.opened_raw(path, fmt, cnt_format) as raw:
        mne_io.check_raw(raw)
        return RecordingHeader(
            path=path, format=fmt, ch_names=tuple(raw.ch_names), ch_sfreqs=mne_io.mne_ch_sfreqs(raw),
            n_samples=int(raw.n_times), meas_date=_meas_date(raw),
            ch_units=mne_io.mne_ch_units(raw), ch_locs=mne_io.mne_eeg_locs(raw),
            files=tuple(str(f) for f in (getattr(raw, "filenames", None) or ()) if f),
        )  # fmt: skip


def _check_finite(data: np.ndarray, names: Sequence[str]) -> None:
    if data.size == 0:
        raise BadInputError("zero samples after picking channels")
    if np.isfinite(data.sum()):  # NaN and inf propagate through a sum: one pass, no temporary (overflow: below)
        return
    bad = ~np.isfinite(data)
    if not bad.any():
        return
    per_ch = bad.mean(axis=1)
    if per_ch.max() == 1.0:
        raise BadInputError(f"NaN data: channel {names[int(per_ch.argmax())]!r} is entirely NaN/inf")
    if bad.mean() > MAX_NONFINITE_FRACTION:
        raise BadInputError(f"NaN data: {bad.mean():.0%} of samples are NaN/inf")


def read_recording(path: str | os.PathLike, picks: Sequence[str] | None = None,
                   cnt_format: str = "auto") -> RawRecording:
    """Load `picks` (raw labels; default all signal channels) as float32 µV (`cnt_format`: see `read_header`)."""
    path = str(Path(path))
    if picks is not None and len(picks) == 0:
        raise BadInputError("no channels picked")
    fmt = detect_format(path)
    if fmt in ("edf", "bdf"):
        try:
            lay = parse_edf_header(path, bdf=fmt == "bdf")
            idx = pick_indices(lay, picks)
            data, sfreq, mixed = read_edf_data(lay, idx)
        except OSError as exc:  # vanished, unreadable or shrunk while mapping
            raise BadInputError(f"{fmt} read failed: {describe(exc)}") from None
        names, date = tuple(lay.labels[i] for i in idx), lay.meas_date
    else:

        with mne_io.opened_raw(path, fmt, cnt_format) as raw:
            mne_io.check_raw(raw)
            data, names = mne_io.read_mne_data(raw, fmt, picks)
            rates = dict(zip(raw.ch_names, mne_io.mne_ch_sfreqs(raw)))
            sfreq = float(raw.info["sfreq"])
            mixed = len({rates[n] for n in names}) > 1
            date = _meas_date(raw)
    _check_finite(data, names)
    return RawRecording(data=data, sfreq=float(sfreq), ch_names=names, format=fmt, mixed_sfreq=mixed, meas_date=date)
