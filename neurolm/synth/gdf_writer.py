"""Minimal GDF 1.25 writer (int16 samples, one record per second).

MNE reads GDF but cannot write it, and no maintained Python GDF writer exists,
so the synthetic corpora would otherwise have no GDF files at all. GDF 1.x is
the simplest layout MNE accepts: a 256-byte fixed header, 256 bytes per
channel, int16 records, then an (empty) event table. Layout per
`mne.io.edf.edf._read_gdf_header` and the GDF 1.25 spec (Schlögl 2006).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from neurolm.errors import ConfigError
from neurolm.synth.edf_writer import EDF_DIGITAL, phys_range


def write_gdf(
    path: str | Path,
    data_uv: np.ndarray,
    sfreq: float,
    ch_names: Sequence[str],
    *,
    meas_date: datetime | None = None,
) -> list[tuple[float, float]]:
    """Write [n_ch, n] µV as GDF 1.25; returns per-channel physical ranges.

    Samples beyond the last whole 1-s record are dropped (so `sfreq` must be
    an integer number of samples per second).
    """
    data = np.asarray(data_uv)
    n_ch = data.shape[0]
    ns = int(round(sfreq))
    if abs(ns - sfreq) > 1e-9 or ns < 1 or n_ch != len(ch_names) or n_ch < 1:
        raise ConfigError("write_gdf needs an integer sfreq and one name per channel")
    n_rec = data.shape[1] // ns
    date = meas_date or datetime(2012, 1, 1)
    phys = [phys_range(row[: n_rec * ns]) for row in data]
    dmin, dmax = EDF_DIGITAL
    hdr = bytearray()
    hdr += b"GDF 1.25"
    hdr += b"X X".ljust(80) + b"synthetic".ljust(80)
    hdr += f"{date:%Y%m%d%H%M%S}00".encode()
    hdr += np.int64(256 * (n_ch + 1)).tobytes()
    hdr += bytes(8 * 3) + bytes(20)  # equipment, hospital, technician ids; reserved
    hdr += np.int64(n_rec).tobytes()
    hdr += np.array([1, 1], "<u4").tobytes()  # record duration = 1/1 s
    hdr += np.uint32(n_ch).tobytes()
    hdr += b"".join(n.encode("latin-1")[:16].ljust(16) for n in ch_names)
    hdr += b" " * (80 * n_ch)  # transducer
    hdr += b"".join(b"uV".ljust(8) for _ in ch_names)
    hdr += np.array([p[0] for p in phys], "<f8").tobytes()
    hdr += np.array([p[1] for p in phys], "<f8").tobytes()
    hdr += np.full(n_ch, dmin, "<i8").tobytes() + np.full(n_ch, dmax, "<i8").tobytes()
    hdr += b" " * (80 * n_ch)  # prefiltering
    hdr += np.full(n_ch, ns, "<i4").tobytes()
    hdr += np.full(n_ch, 3, "<i4").tobytes()  # GDF type 3 = int16
    hdr += bytes(32 * n_ch)
    assert len(hdr) == 256 * (n_ch + 1)
    lo = np.array([p[0] for p in phys])[:, None]
    gain = ((dmax - dmin) / (np.array([p[1] for p in phys]) - lo[:, 0]))[:, None]
    with open(path, "wb") as fh:
        fh.write(hdr)
        step = 600
        for r0 in range(0, n_rec, step):
            r1 = min(n_rec, r0 + step)
            x = data[:, r0 * ns : r1 * ns].astype(np.float64)
            q = np.clip(np.rint((x - lo) * gain + dmin), dmin, dmax).astype("<i2")
            fh.write(q.reshape(n_ch, r1 - r0, ns).transpose(1, 0, 2).tobytes())
        # event table: mode 1, 3-byte event sampling rate, zero events
        fh.write(bytes([1]) + int(ns).to_bytes(3, "little") + np.uint32(0).tobytes())
    return phys
