"""GDF, FIF, BrainVision, EEGLAB and Neuroscan CNT through MNE (preload=False).

Why MNE for these: their containers (FIFF tags, MAT/HDF5, vendor headers)
are not worth re-implementing and MNE's readers are well tested; EDF/BDF,
the bulk of clinical archives, take the faster numpy path instead.
Any exception MNE raises on a source file becomes a one-line
`BadInputError` naming the exception, so one broken file never stops a run.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import mne
import numpy as np
from mne.io.constants import FIFF

from neurolm.errors import BadInputError, describe


@contextmanager
def _as_bad_input(fmt: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except BadInputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a file problem
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BadInputError(f"{fmt} reader failed: {describe(exc, first)}"[:400]) from None


#: MNE insists on these extensions; single-file formats are read through a
#: correctly named symlink when the file's own extension lies.
_MNE_EXT = {"gdf": ".gdf", "cnt": ".cnt", "fif": "_raw.fif"}
CntFormat = Literal["auto", "int16", "int32"]
CNT_FORMATS = ("auto", "int16", "int32")


@contextmanager
def opened_raw(path: str, fmt: str, cnt_format: CntFormat = "auto") -> Iterator[mne.io.BaseRaw]:
    """`open_raw`, via a temporary symlink when MNE would reject the extension.

    The symlink lives until the block ends, so read the samples inside it.
    """
    want = _MNE_EXT.get(fmt)
    if want is None or path.lower().endswith((want, ".fif", ".fif.gz")):
        yield open_raw(path, fmt, cnt_format)
        return
    with tempfile.TemporaryDirectory(prefix="neurolm-read-") as tmp:
        link = Path(tmp) / f"file{want}"
        os.symlink(os.path.abspath(path), link)
        yield open_raw(str(link), fmt, cnt_format)


#: The MNE reader each MNE-backed format opens with (loaded lazily by MNE on first use).
READER_FUNCTIONS = {"gdf": "read_raw_gdf", "fif": "read_raw_fif", "brainvision": "read_raw_brainvision",
                    "eeglab": "read_raw_eeglab", "cnt": "read_raw_cnt"}


def preload_readers(formats) -> None:
    """Import the MNE reader modules of ``formats`` now (MNE imports each on its first use).

    Ingestion forks a child per batch (:mod:`neurolm.ingest.limits`): what a child imports is
    lost with it, so the long-lived worker process imports them once, before forking.
    """
    for fmt in formats:
        name = READER_FUNCTIONS.get(fmt)
        if name is not None:
            getattr(mne.io, name)


def open_raw(path: str, fmt: str, cnt_format: CntFormat = "auto") -> mne.io.BaseRaw:
    """Open lazily with the right MNE reader.

    CNT sample width: `cnt_format` "int16"/"int32" is passed to MNE as is (SEED:
    int32, like the reference; a header that contradicts it fails loudly).
    "auto" (files of unknown origin) lets MNE infer it from the header's sample
    count, then tries int32 when that fails. Why not always "auto": a header
    whose sample count is twice the real one makes MNE infer int16 and return
    garbage of twice the length without any error.
    """
    if cnt_format not in CNT_FORMATS:
        raise BadInputError(f"unknown CNT sample width {cnt_format!r}; use {', '.join(CNT_FORMATS)}")
    kw = {"preload": False, "verbose": "error"}
    with _as_bad_input(fmt):
        if fmt == "gdf":
            return mne.io.read_raw_gdf(path, **kw)
        if fmt == "fif":
            try:
                return mne.io.read_raw_fif(path, allow_maxshield=True, **kw)
            except Exception:
                what = fif_content(path)  # only on failure: raw files pay nothing for the probe
                if what is None:
                    raise
                raise BadInputError(f"not a raw recording: {what}; only continuous raw FIF files are ingested"
                                    ) from None
        if fmt == "brainvision":
            return mne.io.read_raw_brainvision(path, **kw)
        if fmt == "eeglab":
            return mne.io.read_raw_eeglab(path, **kw)
        if fmt == "cnt" and cnt_format != "auto":
            return mne.io.read_raw_cnt(path, data_format=cnt_format, **kw)
        if fmt == "cnt":
            try:
                return mne.io.read_raw_cnt(path, data_format="auto", **kw)
            except Exception:  # noqa: BLE001 - SEED-style files need explicit int32
                return mne.io.read_raw_cnt(path, data_format="int32", **kw)
    raise BadInputError(f"unsupported format {fmt!r}")


def mne_ch_sfreqs(raw: mne.io.BaseRaw) -> tuple[float, ...]:
    """Per-channel native rates where the file has them (GDF), else all sfreq."""
    sfreq = float(raw.info["sfreq"])
    extras = getattr(raw, "_raw_extras", None) or [{}]
    n_samps, rec = extras[0].get("n_samps"), extras[0].get("record_length")
    sel = extras[0].get("sel")
    if n_samps is None or rec is None or len(n_samps) == 0:
        return (sfreq,) * len(raw.ch_names)
    rates = np.asarray(n_samps, dtype=float) * float(rec[1]) / float(rec[0])
    if sel is not None and len(rates) != len(raw.ch_names) and len(sel) == len(raw.ch_names):
        rates = rates[np.asarray(sel)]
    if len(rates) != len(raw.ch_names):
        return (sfreq,) * len(raw.ch_names)
    return tuple(float(r) for r in rates)


def mne_ch_units(raw: mne.io.BaseRaw) -> tuple[str, ...]:
    """Declared unit per channel: the file's own spelling where MNE kept it (BrainVision, EDF), else from FIFF."""
    orig = getattr(raw, "_orig_units", None) or {}
    out = []
    for ch in raw.info["chs"]:
        if ch["unit"] == FIFF.FIFF_UNIT_V:
            out.append(orig.get(ch["ch_name"]) or "V")
        else:
            code = int(ch["unit"])
            fallback = "degC" if code == FIFF.FIFF_UNIT_CEL else f"(FIFF unit {code})"
            out.append(orig.get(ch["ch_name"]) or fallback)
    return tuple(out)


def mne_eeg_locs(raw: mne.io.BaseRaw) -> tuple[tuple[float, float, float] | None, ...]:
    """Head-frame position (m) of each EEG channel that has a real one, None for the others.

    MNE stores a digitized EEG electrode in ``chs[i]["loc"][:3]``; zeros or NaN
    mean "no position", and only head coordinates are comparable with the
    standard montage.
    """
    out: list[tuple[float, float, float] | None] = []
    for ch in raw.info["chs"]:
        loc = np.asarray(ch["loc"][:3], dtype=float)
        ok = (ch["kind"] == FIFF.FIFFV_EEG_CH and ch.get("coord_frame") == FIFF.FIFFV_COORD_HEAD
              and np.isfinite(loc).all() and np.linalg.norm(loc) > 1e-6)
        out.append(tuple(float(v) for v in loc) if ok else None)
    return tuple(out)


#: FIF blocks that mark a file as something other than a raw recording.
_FIF_KINDS = (
    (FIFF.FIFFB_MNE_EPOCHS, "an epochs FIF (segmented trials)"),
    (FIFF.FIFFB_EVOKED, "an evoked FIF (averaged responses)"),
    (FIFF.FIFFB_MNE_FORWARD_SOLUTION, "a forward-solution FIF"),
    (FIFF.FIFFB_MNE_INVERSE_SOLUTION, "an inverse-operator FIF"),
    (FIFF.FIFFB_MNE_COV, "a covariance FIF"),
    (FIFF.FIFFB_MNE_SOURCE_SPACE, "a source-space FIF"),
    (FIFF.FIFFB_BEM, "a BEM FIF"),
)


def fif_content(path: str) -> str | None:
    """What a FIF file holds when it is not a raw recording (None: raw, or unknown)."""
    try:
        from mne._fiff.open import fiff_open
        from mne._fiff.tree import dir_tree_find

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fid, tree, _ = fiff_open(Path(path), verbose="error")
            with fid:
                if any(dir_tree_find(tree, b) for b in (FIFF.FIFFB_RAW_DATA, FIFF.FIFFB_CONTINUOUS_DATA,
                                                        FIFF.FIFFB_IAS_RAW_DATA)):
                    return None
                for block, what in _FIF_KINDS:
                    if dir_tree_find(tree, block):
                        return what
    except Exception:  # noqa: BLE001 - a probe for a better message; the reader's own error stands otherwise
        return None
    return None


def check_raw(raw: mne.io.BaseRaw) -> None:
    if len(raw.ch_names) == 0:
        raise BadInputError("no channels in file")
    if not raw.info["sfreq"] or raw.info["sfreq"] <= 0:
        raise BadInputError(f"absurd header: sampling rate {raw.info['sfreq']}")
    if raw.n_times == 0:
        raise BadInputError("zero records: file holds no samples")
    _check_eeglab_size(raw)


def _check_eeglab_size(raw: mne.io.BaseRaw) -> None:
    """An EEGLAB header's channels x points must fit in its .fdt (float32) before anything is read."""
    if type(raw).__name__ != "RawEEGLAB" or not raw.filenames or not str(raw.filenames[0]).endswith(".fdt"):
        return
    try:
        size = os.path.getsize(raw.filenames[0])
    except OSError:
        return  # the reader reports a missing data file in its own words
    need = len(raw.ch_names) * int(raw.n_times) * 4
    if need > size:
        raise BadInputError(f"truncated: the header claims {len(raw.ch_names)} channels x {int(raw.n_times)} "
                            f"samples ({need} bytes) but the data file holds {size} bytes")


def read_mne_data(raw: mne.io.BaseRaw, fmt: str, picks: Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """float32 µV for `picks` (raw labels) and the labels of the rows."""
    names = list(raw.ch_names)
    if picks is None:
        idx = list(range(len(names)))
    else:
        missing = [p for p in picks if p not in names]
        if missing:
            raise BadInputError(f"channel {missing[0]!r} not in file")
        idx = [names.index(p) for p in picks]
    with _as_bad_input(fmt):
        data = raw.get_data(picks=idx)
    scale = np.array([1e6 if raw.info["chs"][i]["unit"] == FIFF.FIFF_UNIT_V else 1.0 for i in idx])
    out = (data * scale[:, None]).astype(np.float32)
    return out, tuple(names[i] for i in idx)
