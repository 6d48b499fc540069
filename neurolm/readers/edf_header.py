"""EDF/EDF+/BDF header parsing with numpy and plain bytes (no signal load).

Why not MNE here: reading a header must be cheap (discovery reads thousands)
and must turn every defect into a one-line reason. Real archives contain
non-compliant headers (PEERS §B): record count -1, trailing spaces or NULs,
unparseable dates, header-size fields that disagree with the channel count.
Those are read with best effort; defects that make the samples meaningless
(truncation, non-numeric scaling fields, zero/negative rates, physical
min == max) raise `BadInputError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from neurolm.errors import BadInputError

ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
MAX_SFREQ = 100_000.0  # above this a header value is nonsense, not EEG
#: Physical dimension -> factor to µV. A blank dimension is taken as µV (what
#: EEG files with empty units hold in practice; MNE would assume volts).
UNIT_TO_UV = {"uv": 1.0, "\u00b5v": 1.0, "\u03bcv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3, "": 1.0}


@dataclass(frozen=True)
class EdfLayout:
    """Everything needed to locate and scale samples of every channel."""

    path: str
    bdf: bool
    header_bytes: int
    n_records: int
    record_s: float
    labels: tuple[str, ...]  # all signals, annotation channels included
    ns: tuple[int, ...]  # samples per record, per signal
    cal: tuple[float, ...]  # µV per digital step
    offset: tuple[float, ...]  # µV at digital 0
    signal_idx: tuple[int, ...]  # indices of non-annotation signals
    discontinuous: bool  # EDF+D / BDF+D
    meas_date: datetime | None
    units: tuple[str, ...] = ()  # physical dimension of every signal, as declared

    @property
    def width(self) -> int:
        return 3 if self.bdf else 2

    @property
    def record_bytes(self) -> int:
        return sum(self.ns) * self.width

    def byte_offset(self, i: int) -> int:
        """Offset of signal `i` inside one record."""
        return sum(self.ns[:i]) * self.width

    def sfreq_of(self, i: int) -> float:
        return self.ns[i] / self.record_s


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").replace("\x00", " ").strip()


def _num(raw: bytes, what: str, label: str | None = None) -> float:
    text = _text(raw)
    try:
        value = float(text.replace(",", "."))  # some writers use decimal commas
    except ValueError:
        where = f" of channel '{label}'" if label else ""
        raise BadInputError(f"corrupt header: {what}{where} is {text!r}, not a number") from None
    if not np.isfinite(value):
        raise BadInputError(f"corrupt header: {what} is {text!r}")
    return value


def _meas_date(date: str, time: str) -> datetime | None:
    """dd.mm.yy hh.mm.ss; yy >= 85 is 19yy (EDF spec). Unparseable -> None."""
    try:
        d, m, y = (int(v) for v in date.replace(":", ".").split("."))
        hh, mm, ss = (int(v) for v in time.replace(":", ".").split("."))
        return datetime(1900 + y if y >= 85 else 2000 + y, m, d, hh, mm, ss)
    except (ValueError, TypeError):
        return None


def parse_edf_header(path: str | os.PathLike, bdf: bool) -> EdfLayout:
    """Parse and validate an EDF(+)/BDF(+) header; raise `BadInputError` on defects."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            raise BadInputError(f"truncated header: {len(fixed)} of 256 fixed header bytes")
        n_sig_f = _num(fixed[252:256], "signal count")
        if n_sig_f <= 0:
            raise BadInputError(f"no channels: header declares {n_sig_f:g} signals")
        if 256 * (n_sig_f + 1) > size:  # checked before reading: "1e9" signals would allocate 256 GB
            raise BadInputError(f"truncated header: {n_sig_f:g} signals need {256 * (n_sig_f + 1):.0f} header bytes, "
                                f"file has {size}")
        n_sig = int(n_sig_f)
        var = fh.read(256 * n_sig)
    if len(var) < 256 * n_sig:
        raise BadInputError(f"truncated header: {n_sig} signals need {256 * (n_sig + 1)} header bytes, file has {size}")
    _num(fixed[184:192], "header size")  # must be numeric; its value is recomputed below
    header_bytes = 256 * (n_sig + 1)
    reserved = _text(fixed[192:236]).upper()
    n_records = int(_num(fixed[236:244], "record count"))
    record_s = _num(fixed[244:252], "record duration")

    def field(offset: int, width: int) -> list[bytes]:
        start = offset * n_sig
        return [var[start + k * width : start + (k + 1) * width] for k in range(n_sig)]

    labels = tuple(_text(b) for b in field(0, 16))
    units = [_text(b) for b in field(96, 8)]
    pmin = [_num(b, "physical minimum", lab) for b, lab in zip(field(104, 8), labels)]
    pmax = [_num(b, "physical maximum", lab) for b, lab in zip(field(112, 8), labels)]
    dmin = [_num(b, "digital minimum", lab) for b, lab in zip(field(120, 8), labels)]
    dmax = [_num(b, "digital maximum", lab) for b, lab in zip(field(128, 8), labels)]
    ns = tuple(int(_num(b, "samples per record", lab)) for b, lab in zip(field(216, 8), labels))
    signal_idx = tuple(i for i, lab in enumerate(labels) if lab not in ANNOTATION_LABELS)
    if not signal_idx:
        raise BadInputError("no channels: file holds only annotation signals")
    if record_s <= 0:
        raise BadInputError(f"absurd header: record duration {record_s:g} s (sampling rate <= 0)")
    if n_records < -1:
        raise BadInputError(f"absurd header: negative record count {n_records} (negative duration)")
    cal, offset = [], []
    for i, lab in enumerate(labels):
        if ns[i] <= 0:
            raise BadInputError(f"absurd header: channel '{lab}' has {ns[i]} samples per record (sampling rate <= 0)")
        if i in signal_idx and ns[i] / record_s > MAX_SFREQ:
            raise BadInputError(f"absurd header: channel '{lab}' sampling rate {ns[i] / record_s:g} Hz")
        if i in signal_idx and pmax[i] == pmin[i]:
            raise BadInputError(f"absurd header: channel '{lab}' physical minimum == maximum ({pmin[i]:g})")
        if dmax[i] <= dmin[i]:
            raise BadInputError(f"absurd header: channel '{lab}' digital maximum <= minimum")
        factor = UNIT_TO_UV.get(units[i].lower(), 1.0)
        c = (pmax[i] - pmin[i]) / (dmax[i] - dmin[i])
        cal.append(c * factor)
        offset.append((pmin[i] - dmin[i] * c) * factor)
    record_bytes = sum(ns) * (3 if bdf else 2)
    available = (size - header_bytes) // record_bytes
    if n_records == -1:  # "unknown" (recording not closed): infer from file size
        n_records = available
    elif available < n_records:
        raise BadInputError(f"truncated: header says {n_records} records, file holds {available} complete records")
    if n_records == 0:
        raise BadInputError("zero records: file holds no samples")
    return EdfLayout(
        path=str(p), bdf=bdf, header_bytes=header_bytes, n_records=n_records, record_s=record_s,
        labels=labels, ns=ns, cal=tuple(cal), offset=tuple(offset), signal_idx=signal_idx,
        discontinuous=reserved.startswith(("EDF+D", "BDF+D")),
        meas_date=_meas_date(_text(fixed[168:176]), _text(fixed[176:184])), units=tuple(units),
    )  # fmt: skip
