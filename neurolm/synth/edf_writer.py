"""EDF/EDF+/BDF writer for synthetic corpora, on top of pyedflib (EDFlib).

pyedflib writes the container: header, records, EDF+ annotation channel with
its time-keeping TALs, mixed per-channel rates. Two things stay ours:

- quantisation: EDFlib's physical-sample path truncates towards zero (errors
  up to one whole digital step); we round to the nearest step with numpy and
  hand pyedflib digital samples, so a read-back is within half a step.
- EDF+D / BDF+D (discontinuous): EDFlib only writes EDF+C. With
  `record_onsets` we let pyedflib write EDF+C and then rewrite the reserved
  field and each record's time-keeping TAL (a fixed-layout patch of bytes
  pyedflib already placed; see `_make_discontinuous`).

Deliberately malformed files are byte patches on a valid file
(`neurolm.synth.malformed`), since no library writes broken headers.

The physical range of each channel is taken from its data (floored/ceiled to
whole units with a 1-unit margin), so the quantisation step is
`(pmax - pmin) / (dmax - dmin)`; `quantisation_step()` returns it for tests.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from neurolm.errors import ConfigError

EDF_DIGITAL = (-32768, 32767)
BDF_DIGITAL = (-8388608, 8388607)
_BLOCK_RECORDS = 256  # records quantised in memory at a time


def phys_range(x: np.ndarray) -> tuple[float, float]:
    lo, hi = (float(np.min(x)), float(np.max(x))) if x.size else (-1.0, 1.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError("EDF/BDF cannot store non-finite samples")
    return float(math.floor(lo) - 1), float(math.ceil(hi) + 1)


def quantisation_step(phys: tuple[float, float], bdf: bool = False) -> float:
    dmin, dmax = BDF_DIGITAL if bdf else EDF_DIGITAL
    return (phys[1] - phys[0]) / (dmax - dmin)


def _file_type(bdf: bool, plus: bool) -> int:
    import pyedflib

    if bdf:
        return pyedflib.FILETYPE_BDFPLUS if plus else pyedflib.FILETYPE_BDF
    return pyedflib.FILETYPE_EDFPLUS if plus else pyedflib.FILETYPE_EDF


def write_edf(
    path: str | Path,
    signals: np.ndarray | Sequence[np.ndarray],
    sfreqs: float | Sequence[float],
    ch_names: Sequence[str],
    *,
    bdf: bool = False,
    record_s: float = 1.0,
    unit: str = "uV",
    meas_date: datetime | None = None,
    edf_plus: bool = False,
    record_onsets: Sequence[float] | None = None,
) -> list[tuple[float, float]]:
    """Write an EDF (or BDF with `bdf=True`) file; returns per-channel physical ranges.

    `signals` is [n_ch, n] (one rate) or one 1-D array per channel with
    `sfreqs` per channel (mixed rates). Samples beyond the last whole record
    are dropped. `edf_plus=True` writes EDF+C/BDF+C (annotation channel with
    record onsets); `record_onsets` (seconds, one per record) makes EDF+D.
    """
    import pyedflib

    rows = [np.asarray(s) for s in signals]
    n_ch = len(rows)
    rates = [float(sfreqs)] * n_ch if np.isscalar(sfreqs) else [float(f) for f in sfreqs]
    if n_ch == 0 or len(ch_names) != n_ch or len(rates) != n_ch:
        raise ConfigError("write_edf needs >= 1 channel and one name/rate per channel")
    ns = [round(f * record_s) for f in rates]
    if any(abs(n - f * record_s) > 1e-6 or n < 1 for n, f in zip(ns, rates)):
        raise ConfigError(f"sampling rates {rates} need whole samples per {record_s}-s record")
    n_rec = min(len(r) // n for r, n in zip(rows, ns))
    if n_rec < 1:
        raise ConfigError(f"signals shorter than one {record_s}-s record")
    if record_onsets is not None:
        edf_plus = True
        if len(record_onsets) != n_rec:
            raise ConfigError(f"{len(record_onsets)} record onsets for {n_rec} records")
    if any(len(c) > 16 or not c.isascii() for c in ch_names):
        raise ConfigError("EDF labels must be ASCII and at most 16 characters")
    dmin, dmax = BDF_DIGITAL if bdf else EDF_DIGITAL
    phys = [phys_range(r[: n_rec * n]) for r, n in zip(rows, ns)]
    headers = [
        dict(label=name, dimension=unit, sample_frequency=rate, physical_min=p[0], physical_max=p[1],
             digital_min=dmin, digital_max=dmax, transducer="", prefilter="")
        for name, rate, p in zip(ch_names, rates, phys)
    ]  # fmt: skip
    gains = [(dmax - dmin) / (p[1] - p[0]) for p in phys]
    writer = pyedflib.EdfWriter(str(path), n_ch, file_type=_file_type(bdf, edf_plus))
    try:
        with warnings.catch_warnings():  # "forcing a record duration": intended, rates are checked above
            warnings.simplefilter("ignore", UserWarning)
            writer.setSignalHeaders(headers)
            writer.setDatarecordDuration(record_s)
        writer.setStartdatetime(meas_date or datetime(2012, 1, 1))
        for r0 in range(0, n_rec, _BLOCK_RECORDS):
            r1 = min(n_rec, r0 + _BLOCK_RECORDS)
            cols = []
            for row, n, p, g in zip(rows, ns, phys, gains):
                x = np.asarray(row[r0 * n : r1 * n], dtype=np.float64)
                q = np.clip(np.rint((x - p[0]) * g + dmin), dmin, dmax).astype(np.int32)
                cols.append(q.reshape(r1 - r0, n))
            block = np.ascontiguousarray(np.concatenate(cols, axis=1))
            for rec in block:
                if writer.blockWriteDigitalSamples(rec) < 0:
                    raise OSError(f"pyedflib failed writing record {r0} of {path}")
    except ValueError as exc:  # header values pyedflib cannot represent
        raise ConfigError(f"cannot write EDF {path}: {exc}") from None
    finally:
        writer.close()
    if record_onsets is not None:
        _make_discontinuous(Path(path), [float(o) for o in record_onsets], bdf)
    return phys


def _make_discontinuous(path: Path, onsets: list[float], bdf: bool) -> None:
    """Turn a pyedflib EDF+C/BDF+C file into EDF+D/BDF+D with the given record onsets.

    Rewrites the reserved field and, in every record, the annotation signal
    (the last signal EDFlib writes) with one time-keeping TAL "+<onset>\\x14\\x14\\x00".
    """
    width = 3 if bdf else 2
    with open(path, "r+b") as fh:
        fixed = fh.read(256)
        n_sig = int(fixed[252:256])
        n_rec = int(fixed[236:244])
        fh.seek(256 + 216 * n_sig)
        ns = [int(fh.read(8)) for _ in range(n_sig)]
        fh.seek(192)
        fh.write((b"BDF+D" if bdf else b"EDF+D").ljust(44))
        rec_bytes = sum(ns) * width
        ann_off, ann_bytes = sum(ns[:-1]) * width, ns[-1] * width
        if n_rec != len(onsets):
            raise ConfigError(f"{len(onsets)} record onsets for {n_rec} records")
        for k, onset in enumerate(onsets):
            tal = f"+{onset:g}\x14\x14\x00".encode()
            fh.seek(256 * (n_sig + 1) + k * rec_bytes + ann_off)
            fh.write(tal.ljust(ann_bytes, b"\x00"))
