"""Builders of crafted source files (issue 11 §5-8), each small on disk.

Sparse files claim tens of GB but hold a few kB of blocks; "inflating" files
compress zeros. Nothing here allocates more than ~160 MB (virtual, zero pages).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from neurolm.synth import default_ch_names, synth_signal, write_recording

CH = default_ch_names(19)
SEC = 40  # long enough for the default 10 s end crop and 10 s minimum


def good_edf(path: Path, seed: int = 0) -> Path:
    return write_recording(path, "edf", synth_signal(19, 256.0, SEC, seed=seed, ch_names=CH), 256.0, CH)


def good_vhdr(path: Path, seed: int = 0) -> Path:
    return write_recording(path, "brainvision", synth_signal(19, 250.0, SEC, seed=seed, ch_names=CH), 250.0, CH)


def good_fif(path: Path, seed: int = 0) -> Path:
    return write_recording(path, "fif", synth_signal(19, 200.0, SEC, seed=seed, ch_names=CH), 200.0, CH)


def _patch(path: Path, offset: int, field: bytes) -> Path:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(field)
    return path


def edf_signal_count(path: Path, count: bytes = b"1e9 ") -> Path:
    """A valid EDF whose signal-count field reads ``1e9``."""
    return _patch(good_edf(path), 252, count.ljust(4))


def sparse_edf(path: Path, n_records: int = 10_000_000) -> Path:
    """A header consistent with a ~97 GB (sparse) file: 19 ch x 256 Hz x 10^7 s."""
    good_edf(path)
    record_bytes, header = 19 * 256 * 2, 256 * 20
    _patch(path, 236, str(n_records).encode().ljust(8))
    os.truncate(path, header + n_records * record_bytes)
    return path


def sparse_vhdr(path: Path, size: int = 50 * 1024**3) -> Path:
    """A BrainVision recording whose .eeg is a 50 GB sparse file (MNE derives the length from the size)."""
    good_vhdr(path)
    os.truncate(path.with_suffix(".eeg"), size)
    return path


def _set_vars(tmp: Path) -> dict:
    import scipy.io as sio

    p = write_recording(tmp, "eeglab", synth_signal(19, 200.0, SEC, seed=5, ch_names=CH), 200.0, CH)
    out = {k: v for k, v in sio.loadmat(p).items() if not k.startswith("__")}
    p.unlink()
    return out


def eeglab_fdt(path: Path, dataname: str | None = None, pnts: float | None = None, fdt: Path | None = None) -> Path:
    """An EEGLAB .set whose samples are in a .fdt (``dataname`` as written in EEG.data, ``pnts`` as claimed)."""
    import scipy.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    v = _set_vars(path.with_name("_tmp_" + path.name))
    data = v["data"]
    fdt = fdt or path.with_suffix(".fdt")
    fdt.parent.mkdir(parents=True, exist_ok=True)
    data.T.astype("<f4").tofile(fdt)
    v["data"] = np.array([dataname or fdt.name])
    if pnts is not None:
        v["pnts"] = np.array([[float(pnts)]])
    sio.savemat(path, v)
    return path


def eeglab_inflating(path: Path, n_samples: int = 2_000_000) -> Path:
    """A ~150 kB .set whose compressed data inflates to 19 x 2e6 float32 (152 MB)."""
    import scipy.io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    v = _set_vars(path.with_name("_tmp_" + path.name))
    v["data"] = np.zeros((19, n_samples), np.float32)  # zero pages: not resident
    v["pnts"] = np.array([[float(n_samples)]])
    sio.savemat(path, v, do_compression=True)
    return path


def fif_lying_sizes(path: Path) -> Path:
    """A raw FIF whose first data buffer claims 2 GB: the reader computes ~28 M samples from it."""
    from mne._fiff.open import fiff_open
    from mne.io.constants import FIFF

    good_fif(path)
    fid, _, directory = fiff_open(Path(path), verbose="error")
    fid.close()
    pos = next(e.pos for e in directory if e.kind == FIFF.FIFF_DATA_BUFFER)
    return _patch(path, pos + 8, struct.pack(">i", 0x7FFFFFF0))


def fif_split(folder: Path, name: str = "split_raw.fif") -> Path:
    """A 120 s raw FIF saved in two split parts (``name`` and its ``-1`` part); returns the first part."""
    from neurolm.synth.writers import _mne_raw

    folder.mkdir(parents=True, exist_ok=True)
    raw = _mne_raw(synth_signal(19, 200.0, 120, seed=7, ch_names=CH), 200.0, CH, None, None)
    raw.save(folder / name, split_size="2MB", overwrite=True, verbose="error")
    return folder / name


def fif_self_split(folder: Path) -> Path:
    """A split FIF part that names itself as its next part (the reader would loop)."""
    fif_split(folder, "loop_raw.fif")
    os.replace(folder / "loop_raw.fif", folder / "loop_raw-1.fif")  # part 0 names "loop_raw-1.fif" next
    return folder / "loop_raw-1.fif"


def edf_100khz(path: Path) -> Path:
    """An 8 MB EDF: one EEG channel at 100 kHz for 40 s."""
    return write_recording(path, "edf", synth_signal(1, 100_000.0, SEC, seed=9, ch_names=("Cz",)), 100_000.0,
                           ("Cz",))


def vhdr_pointing_to(path: Path, datafile: str, seed: int = 3) -> Path:
    """A BrainVision header whose ``DataFile=`` is ``datafile`` (its own .eeg removed)."""
    good_vhdr(path, seed=seed)
    text = path.read_text(encoding="utf-8")
    own = path.with_suffix(".eeg").name
    path.write_text(text.replace(f"DataFile={own}", f"DataFile={datafile}"), encoding="utf-8")
    path.with_suffix(".eeg").unlink()
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def non_utf8(root: Path) -> tuple[bytes, bytes]:
    """A recording and a folder whose names are not valid UTF-8 (written under plain names, then renamed)."""
    f = os.path.join(os.fsencode(root), b"bad\xff\xfename.edf")
    os.rename(good_edf(root / "tmp1.edf", seed=11), f)
    d = os.path.join(os.fsencode(root), b"dir\xe9")
    os.makedirs(d, exist_ok=True)
    os.rename(good_edf(root / "tmp2.edf", seed=12), os.path.join(d, b"x.edf"))
    return f, d
