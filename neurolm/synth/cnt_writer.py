"""Minimal Neuroscan CNT 3.0 writer (int32 multiplexed samples, no events).

Why: SEED and many LaBraM corpora ship as .cnt and LaBraM reads them with
`data_format='int32'`; without a writer the CNT reader path would be untested.
Only the SETUP fields MNE's reader uses are filled (offsets per
`mne/io/cnt/_utils.py` and paulbourke.net/dataformats/eeg): channel count
(370), rate (376), sample count (864), event-table position (886), channel
offset (894); per 75-byte electrode record: label (0), baseline (47),
sensitivity (59), calibration (71). Samples are int32 at 1 nV per step.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from neurolm.errors import ConfigError

SETUP_BYTES, ELECTRODE_BYTES = 900, 75
STEP_UV = 0.001  # µV per integer step (int32 holds ±2.1 V)


def write_cnt(
    path: str | Path, data_uv: np.ndarray, sfreq: float, ch_names: Sequence[str], *, meas_date: datetime | None = None
) -> Path:
    """Write [n_ch, n] µV as a Neuroscan 3.0 .cnt file with int32 samples."""
    data = np.asarray(data_uv)
    n_ch, n = data.shape
    if n_ch != len(ch_names) or not 0 < sfreq < 65536 or sfreq != int(sfreq):
        raise ConfigError("write_cnt needs one name per channel and an integer sfreq < 65536")
    if np.abs(data).max(initial=0) * 1 / STEP_UV >= 2**31:
        raise ConfigError("values too large for int32 CNT at 1 nV resolution")
    date = meas_date or datetime(2012, 1, 1)
    setup = bytearray(SETUP_BYTES)
    setup[0:12] = b"Version 3.0\x00"
    setup[225:247] = f"{date:%m/%d/%y}".encode().ljust(10, b"\x00") + f"{date:%H:%M:%S}".encode().ljust(12, b"\x00")
    data_start = SETUP_BYTES + ELECTRODE_BYTES * n_ch
    event_pos = data_start + n * n_ch * 4
    struct.pack_into("<H", setup, 370, n_ch)
    struct.pack_into("<H", setup, 376, int(sfreq))
    struct.pack_into("<i", setup, 864, n)
    struct.pack_into("<i", setup, 886, event_pos)
    struct.pack_into("<f", setup, 890, n / sfreq)
    struct.pack_into("<i", setup, 894, 0)  # 0 -> samples multiplexed one by one
    electrodes = bytearray(ELECTRODE_BYTES * n_ch)
    for i, name in enumerate(ch_names):
        base = ELECTRODE_BYTES * i
        electrodes[base : base + 10] = name.encode("latin-1")[:9].ljust(10, b"\x00")
        struct.pack_into("<h", electrodes, base + 47, 0)  # baseline
        struct.pack_into("<f", electrodes, base + 59, 1.0)  # sensitivity
        struct.pack_into("<f", electrodes, base + 71, 204.8 * STEP_UV)  # -> STEP_UV µV per step
    path = Path(path)
    with open(path, "wb") as fh:
        fh.write(setup + electrodes)
        for s0 in range(0, n, 1 << 18):
            block = np.rint(data[:, s0 : s0 + (1 << 18)] / STEP_UV).astype("<i4")
            fh.write(block.T.tobytes())  # multiplexed: sample-major
        fh.write(bytes([1]) + struct.pack("<ii", 0, 0))  # event table: type 1, no events
    return path
