"""Synthetic EEG, writers, corpora, layouts and the `neurolm synth` CLI."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from neurolm.cli import main as cli_main
from neurolm.errors import BadInputError, ConfigError
from neurolm.readers import read_header, read_recording
from neurolm.synth import (
    DEFAULT_FORMATS, LAYOUTS, MALFORMED_KINDS, SynthManifest, default_ch_names, synth_corpus,
    synth_signal, write_edf, write_recording,
)  # fmt: skip


def _band(f, p, lo, hi):
    return p[..., (f >= lo) & (f < hi)].mean(axis=-1)


def test_synth_signal_is_deterministic_and_eeg_like():
    names = ["FP1", "FP2", "O1", "O2", "T3", "CZ", "ECG", "EOG"]
    a = synth_signal(len(names), 256, 120, seed=3, ch_names=names, mains_hz=50)
    assert a.dtype == np.float32 and a.shape == (8, 120 * 256)
    np.testing.assert_array_equal(a, synth_signal(len(names), 256, 120, seed=3, ch_names=names, mains_hz=50))
    assert not np.allclose(a, synth_signal(len(names), 256, 120, seed=4, ch_names=names, mains_hz=50))
    o1, fp1, cz = names.index("O1"), names.index("FP1"), names.index("CZ")
    # the stationary generator (states=False): spectral shape of awake resting EEG
    s = synth_signal(len(names), 256, 120, seed=3, ch_names=names, mains_hz=50, states=False)
    f, p = welch(s, fs=256, nperseg=512)
    assert _band(f, p[cz], 2, 4) > 5 * _band(f, p[cz], 20, 30)  # 1/f background
    assert _band(f, p[o1], 8, 12) > 3 * _band(f, p[cz], 8, 12)  # occipital alpha
    assert _band(f, p[o1], 8, 12) > 2 * _band(f, p[o1], 14, 18)  # alpha is a peak
    assert _band(f, p[cz], 49.5, 50.5) > 5 * _band(f, p[cz], 55, 58)  # 50 Hz mains line
    assert _band(f, p[cz], 59.5, 60.5) < 2 * _band(f, p[cz], 55, 58)
    assert 10 < float(np.std(s[cz])) < 100  # µV scale
    assert np.abs(s[fp1]).max() > 1.5 * np.abs(s[cz]).max()  # frontal blinks
    assert np.abs(s[names.index("ECG")]).max() > 400  # QRS spikes
    # the default (states=True) keeps the same scale, background, spatial gradients and mains
    f, p = welch(a, fs=256, nperseg=512)
    assert _band(f, p[cz], 2, 4) > 5 * _band(f, p[cz], 20, 30)
    assert _band(f, p[o1], 8, 12) > 1.5 * _band(f, p[cz], 8, 12)
    assert _band(f, p[cz], 49.5, 50.5) > 3 * _band(f, p[cz], 55, 58)  # (sleep states raise the floor)
    assert 10 < float(np.std(a[cz])) < 100
    assert np.abs(a[names.index("ECG")]).max() > 400


def _lag1(v: np.ndarray) -> float:
    v = v - v.mean()
    return float((v[1:] * v[:-1]).mean() / v.var())


def _per_second(x: np.ndarray, sfreq: int, lo: float, hi: float) -> np.ndarray:
    """log band power of each 1-s piece of x."""
    secs = x[: len(x) // sfreq * sfreq].reshape(-1, sfreq)
    f = np.fft.rfftfreq(sfreq, 1 / sfreq)
    pw = np.abs(np.fft.rfft(secs * np.hanning(sfreq), axis=1)) ** 2
    return np.log(pw[:, (f >= lo) & (f < hi)].mean(axis=1))


def test_brain_states_make_the_next_second_predictable():
    """With states, a second's amplitude and alpha power persist into the next second (as in real EEG);
    the stationary generator has (almost) no such memory. Alpha stays posterior, delta frontal."""
    names = ["FZ", "CZ", "O1", "T3"]
    a = synth_signal(4, 250, 600, seed=1, ch_names=names)
    s = synth_signal(4, 250, 600, seed=1, ch_names=names, states=False)
    amp = lambda x: np.log(x.reshape(-1, 250).std(axis=1))  # noqa: E731
    assert _lag1(amp(a[1])) > 0.5 and _lag1(amp(s[1])) < 0.2
    assert _lag1(_per_second(a[2], 250, 8, 12)) > 0.5 > _lag1(_per_second(s[2], 250, 8, 12))
    f, p = welch(a, fs=250, nperseg=500)
    assert _band(f, p[2], 8, 12) > 2 * _band(f, p[0], 8, 12)  # alpha: O1 > FZ
    assert _band(f, p[0], 1, 3) > 1.5 * _band(f, p[2], 1, 3)  # delta: FZ > O1
    # state changes are large: 10-s amplitude at CZ spans more than 2x over 10 minutes
    tens = a[1].reshape(-1, 2500).std(axis=1)
    assert tens.max() > 2 * tens.min()


def _patch_mean_share(x: np.ndarray, sfreq: int) -> float:
    """Share of the variance of 1-s patches that is each patch's mean, after NeuroLM's 0.1-75 Hz band-pass."""
    from scipy.signal import butter, sosfiltfilt

    y = sosfiltfilt(butter(4, [0.1, 75], btype="bandpass", fs=sfreq, output="sos"), x, axis=-1)
    p = y[:, : y.shape[1] // sfreq * sfreq].reshape(y.shape[0], -1, sfreq)
    return float((p.mean(axis=-1) ** 2).sum() * sfreq / (p**2).sum())


def test_brain_states_live_in_the_rhythms_not_in_each_second_s_level():
    """The states' slow activity must not dominate a 1-s patch: when most of a patch's variance is its
    mean (a random sub-Hz level), a tokenizer's codes track that level, not the state (issue 12)."""
    names = list(default_ch_names(19))
    a = synth_signal(19, 200, 300, seed=3, ch_names=names, mains_hz=None)
    s = synth_signal(19, 200, 300, seed=3, ch_names=names, mains_hz=None, states=False)
    assert _patch_mean_share(a, 200) < 0.35
    assert _patch_mean_share(a, 200) < 1.5 * _patch_mean_share(s, 200)


def test_labeled_fixture_background_carries_no_brain_state():
    """A labeled recording is a stationary ~10 µV background plus its class patterns: the pretraining corpus's
    20-75 µV state rhythms, unrelated to the label, must not leak into it (they drowned the patterns)."""
    from neurolm.datasets.synth.common import BACKGROUND_UV, Pattern, class_signal

    names = ["FP1", "F3", "C3", "O1", "O2", "CZ"]
    x = class_signal(names, 200.0, 200, seed=5, segments=[(100, 200, Pattern("sine", 10.0, 40.0))], mains_hz=None)
    quiet, marked = x[:, 200:20_000], x[:, 20_000:]
    per_second = quiet[:, : 99 * 200].reshape(len(names), 99, 200).std(axis=-1)
    assert float(np.median(per_second)) < 2 * BACKGROUND_UV
    assert per_second.max() < 4 * BACKGROUND_UV  # no 6-40 s state of large delta or slow waves
    assert marked.std() > 2 * quiet.std()


def test_synth_signal_rejects_bad_arguments():
    with pytest.raises(ConfigError):
        synth_signal(0, 256, 10)
    with pytest.raises(ConfigError):
        synth_signal(3, 256, 10, ch_names=["A", "B"])
    with pytest.raises(ConfigError):
        write_recording("/tmp/x.xyz", "nihonkohden", np.zeros((1, 10)), 10, ["A"])


def _half_step_bound(x: np.ndarray, bdf: bool) -> float:
    """Upper bound of half a quantisation step: the writer's range is [floor(min) - 1, ceil(max) + 1]."""
    return (float(np.ptp(x)) + 4.0) / (2**24 - 1 if bdf else 2**16 - 1) / 2 + 1e-4


def test_one_hour_23_channel_edf_round_trips(tmp_path):
    """A 1-hour file; how fast it is written is measured in bench/bench_readers.py."""
    data = np.tile(synth_signal(23, 256, 60, seed=1), (1, 60))  # 1 h
    names = list(default_ch_names(23))
    path = write_recording(tmp_path / "long.edf", "edf", data, 256, names)
    head = read_header(path)
    assert head.duration_s == 3600.0 and head.ch_names == tuple(names)
    rec = read_recording(path, picks=[names[0], names[-1]])
    for row, i in zip(rec.data, (0, -1)):
        assert np.abs(row - data[i]).max() <= _half_step_bound(data[i], bdf=False)


@pytest.mark.parametrize("fmt", ["edf", "bdf"])
def test_edf_writer_output_read_by_pyedflib_within_half_a_step(tmp_path, fmt):
    import pyedflib

    names = ["FP1", "O1", "ECG", "PHOTIC"]
    x = synth_signal(4, 256, 6, seed=2, ch_names=names)
    rows = [x[0], x[1], x[2, ::2], x[3, ::4]]
    phys = write_edf(tmp_path / f"w.{fmt}", rows, [256, 256, 128, 64], names, bdf=fmt == "bdf",
                     meas_date=datetime(2020, 5, 17, 8, 30, 2), edf_plus=True)  # fmt: skip
    with pyedflib.EdfReader(str(tmp_path / f"w.{fmt}")) as f:
        assert f.getSignalLabels() == names and list(f.getSampleFrequencies()) == [256, 256, 128, 64]
        assert f.getStartdatetime() == datetime(2020, 5, 17, 8, 30, 2)
        assert [f.getPhysicalDimension(i) for i in range(4)] == ["uV"] * 4
        assert f.filetype == (pyedflib.FILETYPE_BDFPLUS if fmt == "bdf" else pyedflib.FILETYPE_EDFPLUS)
        for i, row in enumerate(rows):
            assert np.abs(f.readSignal(i) - row).max() <= _half_step_bound(row, bdf=fmt == "bdf"), names[i]
    assert len(phys) == 4  # per-channel physical ranges


def _tal_onsets(path: Path) -> tuple[bytes, list[float]]:
    """Reserved field and first TAL onset of every record, parsed here from the raw bytes."""
    raw = path.read_bytes()
    n_sig, n_rec = int(raw[252:256]), int(raw[236:244])
    ns = [int(raw[256 + 216 * n_sig + 8 * k : 256 + 216 * n_sig + 8 * (k + 1)]) for k in range(n_sig)]
    labels = [raw[256 + 16 * k : 256 + 16 * (k + 1)].strip() for k in range(n_sig)]
    ann = labels.index(b"EDF Annotations")
    rec, off = 2 * sum(ns), 2 * sum(ns[:ann])
    start = 256 * (n_sig + 1)
    tals = [raw[start + r * rec + off : start + r * rec + off + 2 * ns[ann]] for r in range(n_rec)]
    return raw[192:197], [float(t.split(b"\x14")[0]) for t in tals]


def test_edf_plus_d_records_carry_the_given_onsets(tmp_path):
    x = synth_signal(3, 200, 5, seed=4)
    path = tmp_path / "d.edf"
    write_edf(path, x, 200, ["C3", "C4", "CZ"], record_onsets=[0, 1, 2, 4.5, 7])
    assert _tal_onsets(path) == (b"EDF+D", [0.0, 1.0, 2.0, 4.5, 7.0])
    write_edf(tmp_path / "c.edf", x, 200, ["C3", "C4", "CZ"], edf_plus=True)
    assert _tal_onsets(tmp_path / "c.edf") == (b"EDF+C", [0.0, 1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ConfigError, match="record onsets"):
        write_edf(tmp_path / "bad.edf", x, 200, ["C3", "C4", "CZ"], record_onsets=[0, 1])


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> SynthManifest:
    return synth_corpus(tmp_path_factory.mktemp("flat"), n_recordings=12, minutes=0.25, n_malformed=8, seed=5)


def test_flat_corpus_matches_its_manifest(flat):
    root = Path(flat.root)
    assert len(flat.good) == 12 and {f.format for f in flat.good} == set(DEFAULT_FORMATS)
    assert sorted(f.malformed for f in flat.malformed) == sorted(MALFORMED_KINDS)
    assert len({f.subject for f in flat.good}) == 6 and {f.session for f in flat.good} == {"01", "02"}
    for f in flat.good:
        assert re.fullmatch(rf"{f.subject}/{f.session}/{f.subject}_{f.session}_r\d{{3}}.*", f.path)
        rec = read_recording(root / f.path)
        assert rec.ch_names == f.ch_names and rec.sfreq == f.sfreq and rec.mixed_sfreq == f.mixed_sfreq
        assert rec.duration_s == pytest.approx(f.duration_s, abs=1.0)
        assert 19 <= len(f.eeg_channels) <= 64 and set(f.eeg_channels) <= set(f.ch_names)
    assert {f.sfreq for f in flat.good} <= {250.0, 256.0, 500.0, 512.0}
    assert any(len(f.ch_names) > len(f.eeg_channels) for f in flat.good)  # non-EEG present
    assert any(f.mixed_sfreq for f in flat.good)  # an EDF/BDF with slower non-EEG channels
    for f in flat.malformed:
        if f.stage == "reader":
            with pytest.raises(BadInputError) as err:
                read_recording(root / f.path)
            assert f.reason in err.value.reason
    loaded = SynthManifest.from_json((root / "synth_manifest.json").read_text())
    assert loaded == flat


def _pyedflib_labels_rates_duration(path: Path) -> tuple[tuple[str, ...], float, float]:
    import pyedflib

    with pyedflib.EdfReader(str(path)) as f:
        return tuple(f.getSignalLabels()), float(max(f.getSampleFrequencies())), float(f.getFileDuration())


def test_corpus_edf_and_bdf_files_open_in_pyedflib_as_in_the_manifest(flat):
    files = [f for f in flat.good if f.format in ("edf", "bdf")]
    assert {f.format for f in files} == {"edf", "bdf"}
    for f in files:
        labels, rate, duration = _pyedflib_labels_rates_duration(Path(flat.root) / f.path)
        assert labels == f.ch_names and rate == f.sfreq and duration == pytest.approx(f.duration_s, abs=1.0)


def test_corpus_is_deterministic_by_seed(tmp_path, flat):
    again = synth_corpus(tmp_path / "again", n_recordings=12, minutes=0.25, n_malformed=8, seed=5)
    assert [(f.path, f.ch_names, f.sfreq, f.malformed) for f in again.files] == [
        (f.path, f.ch_names, f.sfreq, f.malformed) for f in flat.files
    ]
    edf = next(f.path for f in flat.good if f.format == "edf")
    assert (Path(again.root) / edf).read_bytes() == (Path(flat.root) / edf).read_bytes()
    other = synth_corpus(tmp_path / "other", n_recordings=12, minutes=0.25, n_malformed=0, seed=6)
    assert [f.sfreq for f in other.files] != [f.sfreq for f in flat.good]


def test_tuh_layout(tmp_path):
    m = synth_corpus(tmp_path, n_recordings=4, minutes=0.2, n_malformed=2, seed=1, layout="tuh")
    pat = re.compile(r"(?P<s>[a-z]{8})/(?P<ses>s\d{3})_\d{4}/01_tcp_ar/(?P=s)_(?P=ses)_t000(\.edf|_raw\.fif)")
    for f in m.files:
        assert pat.fullmatch(f.path), f.path
    for f in m.good:
        assert f.format == "edf" and all(c.startswith("EEG ") and c.endswith("-REF") for c in f.eeg_channels)
        assert read_header(tmp_path / f.path).ch_names == f.ch_names
        assert _pyedflib_labels_rates_duration(tmp_path / f.path)[:2] == (f.ch_names, f.sfreq)


def test_bids_layout_is_readable_by_mne_bids(tmp_path):
    from mne_bids import BIDSPath, get_entity_vals, read_raw_bids

    m = synth_corpus(tmp_path, n_recordings=4, formats=("edf", "brainvision"), minutes=0.2, n_malformed=1, layout="bids")
    assert (tmp_path / "participants.tsv").exists() and (tmp_path / "dataset_description.json").exists()
    assert get_entity_vals(tmp_path, "subject", ignore_subjects=[m.malformed[0].subject]) == ["01", "02"]
    f = next(f for f in m.good if f.format == "brainvision")
    bp = BIDSPath(subject=f.subject, session=f.session, task="rest", datatype="eeg", root=tmp_path)
    raw = read_raw_bids(bp, verbose="error")
    assert raw.info["line_freq"] == 60 and len(raw.ch_names) == len(f.ch_names)
    np.testing.assert_allclose(raw.get_data(units="uV"), read_recording(tmp_path / f.path).data, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs",
    [dict(n_recordings=0), dict(formats=("edf", "mef")), dict(formats=()), dict(minutes=-1.0),
     dict(n_malformed=-1), dict(layout="weird")],
)  # fmt: skip
def test_synth_corpus_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        synth_corpus(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written before the error


def test_cli_synth_writes_corpus_and_rejects_bad_args(tmp_path, capsys):
    out = tmp_path / "c"
    rc = cli_main(["synth", str(out), "--recordings", "3", "--formats", "edf,fif", "--minutes", "0.2",
                   "--malformed", "2", "--seed", "2", "--mains", "50"])  # fmt: skip
    assert rc == 0
    m = SynthManifest.from_json((out / "synth_manifest.json").read_text())
    assert len(m.good) == 3 and len(m.malformed) == 2 and m.mains_hz == 50.0
    assert {f.format for f in m.good} == {"edf", "fif"}
    assert "synthetic corpus" in capsys.readouterr().out
    assert cli_main(["synth", str(out), "--recordings", "1"]) == 2  # non-empty without --overwrite
    assert "not empty" in capsys.readouterr().err
    assert cli_main(["synth", str(out), "--recordings", "1", "--minutes", "0.1", "--overwrite"]) == 0
    for bad in (["--formats", "edf,xyz"], ["--recordings", "0"], ["--minutes", "-2"], ["--layout", "x"],
                ["--mains", "55"], ["--malformed", "-1"]):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            cli_main(["synth", str(tmp_path / "d"), *bad])
        assert exc.value.code == 2
    assert not (tmp_path / "d").exists()
    assert set(LAYOUTS) == {"flat", "tuh", "bids"}


def test_cli_dataset_dispatch_reports_clear_errors(tmp_path, capsys):
    rc = cli_main(["synth", str(tmp_path / "ds"), "--dataset", "no_such_dataset"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no_such_dataset" in err or "synth_dataset" in err  # unknown name, or the module is missing


def test_cli_dataset_fixture_prints_a_summary_not_the_manifest(tmp_path, capsys):
    assert cli_main(["synth", "--dataset", "hmc", str(tmp_path / "hmc")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    edfs = sorted((tmp_path / "hmc").glob("SN*.edf"))
    edfs = [p for p in edfs if "sleepscoring" not in p.name]
    assert len(out) == 1 and f"{len(edfs)} recordings" in out[0] and "stages" not in out[0]
