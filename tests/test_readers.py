"""Readers on files of every format written by neurolm.synth, plus defects."""

from __future__ import annotations

import os
from pathlib import Path

import mne
import numpy as np
import pytest

from neurolm.errors import BadInputError
from neurolm.readers import detect_format, read_header, read_recording
from neurolm.synth import (
    EXTENSION, MALFORMED_KINDS, SPECS, WRITABLE_FORMATS, default_ch_names, quantisation_step,
    synth_signal, write_edf, write_malformed, write_recording,
)  # fmt: skip
from neurolm.synth.edf_writer import phys_range

SFREQ = 250.0
NAMES = list(default_ch_names(21, 2))  # 19 EEG + ECG + EOG


@pytest.fixture(scope="module")
def signal() -> np.ndarray:
    return synth_signal(len(NAMES), SFREQ, 12, seed=7, ch_names=NAMES)


@pytest.fixture(scope="module")
def written(tmp_path_factory, signal) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fmt")
    return {fmt: write_recording(d / f"rec{EXTENSION[fmt]}", fmt, signal, SFREQ, NAMES) for fmt in WRITABLE_FORMATS}


def _tolerance(fmt: str, row: np.ndarray) -> float:
    if fmt in ("edf", "bdf", "gdf"):  # integer formats: half a step (+ float32 rounding)
        return quantisation_step(phys_range(row), bdf=fmt == "bdf") / 2 + 1e-4
    return 1e-3  # float32 containers


@pytest.mark.parametrize("fmt", WRITABLE_FORMATS)
def test_every_format_reads_back_what_was_written(written, signal, fmt):
    path = written[fmt]
    assert detect_format(path) == fmt
    rec = read_recording(path)
    assert rec.format == fmt and rec.sfreq == SFREQ and not rec.mixed_sfreq
    assert rec.ch_names == tuple(NAMES)
    assert rec.data.dtype == np.float32 and rec.data.shape == signal.shape
    for i in range(len(NAMES)):
        assert np.abs(rec.data[i] - signal[i]).max() <= _tolerance(fmt, signal[i]), NAMES[i]
    head = read_header(path)
    assert head.ch_names == tuple(NAMES) and head.sfreq == SFREQ
    assert head.n_samples == signal.shape[1] and head.duration_s == pytest.approx(12.0)


@pytest.mark.parametrize("fmt", WRITABLE_FORMATS)
def test_picks_load_only_named_channels_in_pick_order(written, signal, fmt):
    picks = [NAMES[5], NAMES[0], "ECG"]
    rec = read_recording(written[fmt], picks=picks)
    assert rec.ch_names == tuple(picks) and rec.data.shape == (3, signal.shape[1])
    np.testing.assert_allclose(rec.data[1], signal[0], atol=_tolerance(fmt, signal[0]))
    with pytest.raises(BadInputError, match="not in file"):
        read_recording(written[fmt], picks=["NOPE"])


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_numpy_edf_path_equals_mne(written, fmt):
    raw = mne.io.read_raw(written[fmt], preload=True, verbose="error")
    ours = read_recording(written[fmt])
    np.testing.assert_allclose(ours.data, raw.get_data(units="uV"), rtol=1e-5, atol=1e-4)
    sub = read_recording(written[fmt], picks=["O2", "FP1"])
    np.testing.assert_allclose(sub.data, raw.get_data(picks=["O2", "FP1"], units="uV"), rtol=1e-5, atol=1e-4)


def test_header_of_long_sparse_file_reports_its_length(tmp_path, signal):
    """A 2-hour header over a sparse file (header speed is measured in bench/bench_readers.py)."""
    path = tmp_path / "huge.edf"
    write_edf(path, signal[:, :250], SFREQ, NAMES)
    rec_bytes = len(NAMES) * 250 * 2
    with open(path, "r+b") as fh:
        fh.seek(236)
        fh.write(b"7200    ")
        fh.truncate(256 * (len(NAMES) + 1) + 7200 * rec_bytes)  # sparse, ~76 MB of zeros
    head = read_header(path)
    assert head.n_samples == 7200 * 250 and head.duration_s == 7200.0


def test_mixed_rate_edf_brought_to_highest_picked_rate(tmp_path):
    n = 2560  # 10 s at 256 Hz
    t = np.arange(n) / 256.0
    eeg = 40 * np.sin(2 * np.pi * 10 * t)
    slow = 100 * np.sin(2 * np.pi * 1.5 * t)
    path = tmp_path / "mixed.edf"
    write_edf(path, [eeg, eeg, slow[::2], slow[::4]], [256, 256, 128, 64], ["C3", "C4", "PHOTIC", "ECG"])
    head = read_header(path)
    assert head.ch_sfreqs == (256.0, 256.0, 128.0, 64.0) and head.sfreq == 256.0
    rec = read_recording(path)
    assert rec.mixed_sfreq and rec.sfreq == 256.0 and rec.data.shape == (4, n)
    inner = slice(64, n - 64)  # away from the polyphase filter's edges
    np.testing.assert_allclose(rec.data[2, inner], slow[inner], atol=1.0)
    np.testing.assert_allclose(rec.data[3, inner], slow[inner], atol=1.0)
    only_slow = read_recording(path, picks=["ECG", "PHOTIC"])
    assert only_slow.sfreq == 128.0 and only_slow.mixed_sfreq and only_slow.data.shape == (2, 1280)
    single = read_recording(path, picks=["ECG"])
    assert single.sfreq == 64.0 and not single.mixed_sfreq


def test_edf_plus_discontinuous_records_placed_at_onsets(tmp_path, signal):
    onsets = [0, 1, 2, 5, 6]  # 2-s gap after record 2
    path = tmp_path / "disc.edf"
    write_edf(path, signal[:, : 5 * 250], SFREQ, NAMES, record_onsets=onsets)
    head = read_header(path)
    assert "EDF Annotations" not in head.ch_names and len(head.ch_names) == len(NAMES)
    rec = read_recording(path)
    assert rec.data.shape == (len(NAMES), 7 * 250)
    tol = quantisation_step(phys_range(signal[0, :1250])) + 1e-3
    np.testing.assert_allclose(rec.data[0, :750], signal[0, :750], atol=tol)
    np.testing.assert_allclose(rec.data[0, 1250:], signal[0, 750:1250], atol=tol)
    gap = rec.data[0, 750:1250]  # bridged linearly from the last to the next sample
    expected = np.interp(np.arange(750, 1250), [749, 1250], [rec.data[0, 749], rec.data[0, 1250]])
    np.testing.assert_allclose(gap, expected, atol=1e-3)
    bad = tmp_path / "overlap.edf"
    write_edf(bad, signal[:, : 3 * 250], SFREQ, NAMES, record_onsets=[0, 2, 1.5])
    with pytest.raises(BadInputError, match="overlap"):
        read_recording(bad)


def test_edf_plus_continuous_annotation_channel_is_skipped_and_equals_mne(tmp_path, signal):
    path = tmp_path / "plus.edf"
    write_edf(path, signal, SFREQ, NAMES, edf_plus=True)
    rec = read_recording(path)
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    assert rec.ch_names == tuple(raw.ch_names) == tuple(NAMES)
    np.testing.assert_allclose(rec.data, raw.get_data(units="uV"), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_kinds_give_one_line_reasons(tmp_path, kind):
    for seed in range(3):  # each seed exercises a different defect variant
        path = tmp_path / f"bad{seed}{SPECS[kind].suffix}"
        spec = write_malformed(path, kind, seed=seed)
        if spec.stage == "reader":
            with pytest.raises(BadInputError) as err:
                read_header(path)
                read_recording(path)
            assert spec.reason in err.value.reason and "\n" not in err.value.reason
        elif spec.stage == "channels":
            from neurolm.vocab import select_channels

            rec = read_recording(path)
            assert select_channels(rec.ch_names).n_channels == 0
        else:
            assert read_header(path).duration_s < 10.0


def _patch(path: Path, offset: int, text: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(text)


def test_non_compliant_but_usable_edf_headers(tmp_path, signal):
    path = tmp_path / "sloppy.edf"
    write_edf(path, signal, SFREQ, NAMES)
    n = len(NAMES)
    _patch(path, 236, b"-1      ")  # record count unknown
    _patch(path, 168, b"31.02.xx")  # impossible date
    _patch(path, 184, b"1       ")  # wrong (but numeric) header size
    _patch(path, 256, b"FP1\x00\x00\x00" + b" " * 10)  # NUL padding in a label
    _patch(path, 256 + 216 * n, b"250.0   ")  # float sample count
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 100)  # incomplete trailing record
    head = read_header(path)
    assert head.n_samples == signal.shape[1] and head.meas_date is None and head.ch_names[0] == "FP1"
    rec = read_recording(path)
    np.testing.assert_allclose(rec.data[0], signal[0], atol=_tolerance("edf", signal[0]))


def test_partial_nan_passes_but_nan_laden_is_rejected(tmp_path, signal):
    x = signal.copy()
    x[3, 100:200] = np.nan
    ok = write_recording(tmp_path / "few_raw.fif", "fif", x, SFREQ, NAMES)
    assert np.isnan(read_recording(ok).data[3]).sum() == 100
    x[:, ::2] = np.nan
    bad = write_recording(tmp_path / "many_raw.fif", "fif", x, SFREQ, NAMES)
    with pytest.raises(BadInputError, match="NaN data: 50%"):
        read_recording(bad)


def test_detect_format_by_content_when_extension_lies(tmp_path, written):
    for fmt in ("edf", "bdf", "gdf", "fif", "cnt"):
        liar = tmp_path / f"{fmt}_file.dat"
        liar.write_bytes(written[fmt].read_bytes())
        assert detect_format(liar) == fmt
        assert read_recording(liar).format == fmt
    swapped = tmp_path / "really_bdf.edf"
    swapped.write_bytes(written["bdf"].read_bytes())
    assert detect_format(swapped) == "bdf"
    (tmp_path / "x.xyz").write_bytes(os.urandom(600))
    with pytest.raises(BadInputError, match="unknown format: no known signature"):
        detect_format(tmp_path / "x.xyz")
    (tmp_path / "empty.edf").write_bytes(b"")
    with pytest.raises(BadInputError, match="empty file"):
        read_header(tmp_path / "empty.edf")
    with pytest.raises(BadInputError, match="companion"):
        detect_format(written["brainvision"].with_suffix(".vmrk"))
    with pytest.raises(BadInputError, match="cannot open"):
        detect_format(tmp_path / "missing.edf")


def test_corrupt_containers_read_by_mne_become_bad_input(tmp_path, written):
    for fmt in ("fif", "gdf", "eeglab", "cnt"):
        blob = bytearray(written[fmt].read_bytes())
        cut = tmp_path / f"cut_{fmt}{EXTENSION[fmt]}"
        cut.write_bytes(bytes(blob[: len(blob) // 3]))
        with pytest.raises(BadInputError) as err:
            read_recording(cut)
        assert "\n" not in err.value.reason and len(err.value.reason) > 10


# --- pyedflib as a second, independent EDF/BDF reader ----------------------------------------
# No library we have writes BDF except pyedflib (MNE exports EDF only, through edfio), so BDF
# files here come from pyedflib alone; EDF files come from pyedflib, MNE's exporter and edfio.

_UV_PER_UNIT = {"uv": 1.0, "\u00b5v": 1.0, "mv": 1e3, "v": 1e6}  # written here, not taken from neurolm.readers


def _pyedflib_signals(path: Path) -> list[tuple[str, float, np.ndarray, float]]:
    """(label, rate, µV samples, tolerance in µV) per signal, read by pyedflib.

    The tolerance is the file's quantisation step plus float32 rounding at the
    magnitude of the channel's physical range (our reader returns float32; a
    BDF step can be finer than a float32 ulp of the range).
    """
    import pyedflib

    out = []
    with pyedflib.EdfReader(str(path)) as f:
        for i in range(f.signals_in_file):
            h = f.getSignalHeader(i)
            factor = _UV_PER_UNIT[h["dimension"].strip().lower()]
            step = (h["physical_max"] - h["physical_min"]) / (h["digital_max"] - h["digital_min"]) * factor
            f32 = 8 * np.finfo(np.float32).eps * max(abs(h["physical_max"]), abs(h["physical_min"])) * factor
            out.append((h["label"], float(f.getSampleFrequency(i)), f.readSignal(i) * factor, abs(step) + f32))
    return out


def _assert_reader_equals_pyedflib(path: Path) -> None:
    ref = _pyedflib_signals(path)
    head = read_header(path)
    assert head.ch_names == tuple(r[0] for r in ref)
    assert head.ch_sfreqs == pytest.approx([r[1] for r in ref])
    for rate in sorted({r[1] for r in ref}):  # one rate per read: no resampling in the comparison
        group = [r for r in ref if r[1] == rate]
        rec = read_recording(path, picks=[r[0] for r in group])
        assert rec.sfreq == pytest.approx(rate) and rec.data.shape == (len(group), len(group[0][2]))
        for row, (label, _, x, tol) in zip(rec.data, group):
            np.testing.assert_allclose(row, x, rtol=0, atol=tol, err_msg=label)


@pytest.mark.parametrize(
    "kind", ["edf", "edf_plus", "bdf", "bdf_plus", "edf_mixed_rates", "bdf_mixed_rates"],
)  # fmt: skip
def test_reader_equals_pyedflib_on_pyedflib_written_files(tmp_path, signal, kind):
    bdf = kind.startswith("bdf")
    path = tmp_path / f"{kind}.{'bdf' if bdf else 'edf'}"
    if kind.endswith("mixed_rates"):
        rows = [signal[0], signal[1], signal[19, ::2], signal[20, ::5]]
        write_edf(path, rows, [SFREQ, SFREQ, SFREQ / 2, SFREQ / 5], ["C3", "C4", "ECG", "EOG"], bdf=bdf)
    else:
        write_edf(path, signal, SFREQ, NAMES, bdf=bdf, edf_plus=kind.endswith("plus"))
    head = path.read_bytes()[:256]
    assert (head[:8] == b"\xffBIOSEMI") == bdf and (b"+C" in head[192:236]) == kind.endswith("plus")
    _assert_reader_equals_pyedflib(path)


def test_reader_equals_pyedflib_on_mne_exported_edf(tmp_path, signal):
    info = mne.create_info(NAMES, SFREQ, "eeg", verbose="error")
    raw = mne.io.RawArray(signal.astype(np.float64) * 1e-6, info, verbose="error")
    path = tmp_path / "mne_export.edf"
    mne.export.export_raw(path, raw, fmt="edf", verbose="error")
    _assert_reader_equals_pyedflib(path)
    assert read_recording(path).data.shape == signal.shape


def test_reader_equals_pyedflib_on_edfio_edf_plus_in_millivolts(tmp_path, signal):
    """edfio-written EDF+C: mV units, an odd digital range, two rates, one annotation."""
    import edfio

    sigs = [
        edfio.EdfSignal(signal[i].astype(np.float64) / 1000.0, sampling_frequency=SFREQ, label=NAMES[i],
                        physical_dimension="mV", digital_range=(-2000, 30000))
        for i in range(4)
    ] + [edfio.EdfSignal(signal[19, ::2].astype(np.float64) / 1000.0, sampling_frequency=SFREQ / 2,
                         label="ECG", physical_dimension="mV")]  # fmt: skip
    path = tmp_path / "edfio_mv.edf"
    edfio.Edf(sigs, annotations=[edfio.EdfAnnotation(1.5, None, "eyes closed")]).write(path)
    assert path.read_bytes()[192:197] == b"EDF+C"
    _assert_reader_equals_pyedflib(path)
    rec = read_recording(path, picks=[NAMES[0]])  # and mV became µV
    np.testing.assert_allclose(rec.data[0], signal[0], atol=np.ptp(signal[0]) * 1.1 / 32000 + 1e-3)
