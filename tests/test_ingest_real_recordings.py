"""Real recordings from other tools (issue 9 §3): what the worker keeps, drops and reports.

Files are written by third-party writers (MNE, pybv) or by our EDF writer
with header fields patched the way other tools fill them.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurolm.ingest import IngestState, discover, open_store, process_batch
from neurolm.synth import default_ch_names, synth_signal, write_recording
from neurolm.vocab import select_channels
from storage.signal_store import SignalStore

CH = default_ch_names(19)


def _ingest_one(path, root, tmp_path, name="store"):
    store = open_store(str(tmp_path / name))
    files = [f for f in discover(str(root), "r") if f.item.path == str(path)]
    assert len(files) == 1
    row = process_batch([files[0].item], store.url, store.version_id, run_id="r1")[0]
    return store, row


def _set_edf_unit(path, channel: int, unit: str) -> None:
    """Patch one channel's physical dimension (8 ASCII bytes) in an EDF header."""
    raw = bytearray(path.read_bytes())
    n_sig = int(raw[252:256].decode())
    off = 256 + 96 * n_sig + 8 * channel
    raw[off:off + 8] = unit.encode("latin-1").ljust(8)[:8]
    path.write_bytes(bytes(raw))


def test_dropped_channels_are_recorded_with_their_reason(tmp_path):
    names = [*CH[:4], "ECG", "Photic", "XYZ"]
    root = tmp_path / "src"
    path = write_recording(root / "a.edf", "edf", synth_signal(len(names), 256.0, 40, seed=1, ch_names=names),
                           256.0, names)
    store, row = _ingest_one(path, root, tmp_path)
    assert row["status"] == "ingested" and row["recording_row"]["n_channels"] == 4
    dropped = {raw: why for raw, why in store.recording_meta(row["recording_id"])["attrs"]["dropped_channels"]}
    assert dropped == {"ECG": "non-EEG channel", "Photic": "non-EEG channel", "XYZ": "not in vocabulary"}


def test_biosemi_i1_i2_follow_the_cap_detection():
    cap = [f"{b}{i}" for b in "ABCD" for i in range(1, 33)]
    sel = select_channels([*cap, "I1", "I2"])
    assert sel.n_channels == 0
    assert dict(sel.dropped)["I1"] == dict(sel.dropped)["I2"] == dict(sel.dropped)["A3"]
    # without a BioSemi cap, I1/I2 are the 10-5 sites
    assert select_channels(["FP1", "I1", "I2"]).names == ("FP1", "I1", "I2")


def test_edf_channel_in_degrees_celsius_is_dropped(tmp_path):
    names = list(CH[:4]) + ["T1"]  # T1 is a vocabulary site; here it is a temperature probe
    root = tmp_path / "src"
    path = write_recording(root / "a.edf", "edf", synth_signal(5, 256.0, 40, seed=2, ch_names=names), 256.0, names)
    _set_edf_unit(path, 4, "degC")
    store, row = _ingest_one(path, root, tmp_path)
    assert row["recording_row"]["ch_names"].split(",") == [n.upper() for n in names[:4]]
    dropped = store.recording_meta(row["recording_id"])["attrs"]["dropped_channels"]
    assert ["T1", "unit degC is not a voltage"] in dropped


def test_brainvision_channel_declared_in_microsiemens_is_dropped(tmp_path):
    pybv = pytest.importorskip("pybv")
    names = ["Fp1", "Cz", "O2", "CP6"]
    root = tmp_path / "src"
    root.mkdir()
    data = synth_signal(4, 250.0, 40, seed=3, ch_names=names).astype(np.float64)
    pybv.write_brainvision(data=data, sfreq=250.0, ch_names=names, fname_base="gsr", folder_out=str(root),
                           unit=["µV", "µV", "µV", "µS"], overwrite=True)
    store, row = _ingest_one(root / "gsr.vhdr", root, tmp_path)
    assert row["status"] == "ingested" and row["recording_row"]["ch_names"] == "FP1,CZ,O2"
    dropped = store.recording_meta(row["recording_id"])["attrs"]["dropped_channels"]
    assert ["CP6", "unit µS is not a voltage"] in dropped


def test_only_non_voltage_channels_quarantine_with_the_reason(tmp_path):
    names = ["Cz", "Pz"]
    root = tmp_path / "src"
    path = write_recording(root / "a.edf", "edf", synth_signal(2, 256.0, 40, seed=4, ch_names=names), 256.0, names)
    _set_edf_unit(path, 0, "%")
    _set_edf_unit(path, 1, "uS")
    _, row = _ingest_one(path, root, tmp_path)
    assert row["status"] == "quarantined" and "unit % is not a voltage" in row["reason"]


@pytest.mark.parametrize("kind", ["evoked", "epochs"])
def test_non_raw_fif_says_what_it_is(tmp_path, kind):
    import mne

    root = tmp_path / "src"
    root.mkdir()
    info = mne.create_info(["Fz", "Cz"], 250.0, "eeg")
    x = np.random.default_rng(0).standard_normal((3, 2, 500)) * 1e-6
    if kind == "evoked":
        path = root / "x-ave.fif"
        mne.EvokedArray(x[0], info).save(path, overwrite=True, verbose="error")
    else:
        path = root / "x-epo.fif"
        mne.EpochsArray(x, info, verbose="error").save(path, overwrite=True, verbose="error")
    _, row = _ingest_one(path, root, tmp_path)
    assert row["status"] == "quarantined"
    assert row["reason"].startswith(f"not a raw recording: an {kind} FIF")


def test_content_hash_of_two_identical_runs_is_equal(tmp_path):
    root = tmp_path / "src"
    for i, sub in enumerate(("s1", "s2")):
        write_recording(root / sub / "a.edf", "edf", synth_signal(19, 256.0, 40, seed=i, ch_names=CH), 256.0, CH)
    hashes = []
    for run in ("run-a", "run-b"):
        store = open_store(str(tmp_path / run))
        st = IngestState.load(store, run)
        diff = st.plan(discover(str(root), "r"), "r")
        st.add(process_batch([f.item for f in diff.to_ingest], store.url, store.version_id, run_id=run))
        st.finalize()
        assert set(store.read_table("catalog")["run_id"]) == {run}
        hashes.append(SignalStore.open(store.url).content_hash(verify=True))
    assert hashes[0] == hashes[1]


SITES = ("Fz", "Cz", "Pz", "C3", "C4", "F3", "F4", "O1", "O2", "P3", "P4", "T7")


def _head_positions(names):
    """Head-frame positions of standard 10-05 sites, as MNE's set_montage puts them (independent of our code)."""
    import mne

    name = "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
    info = mne.create_info(list(names), 250.0, "eeg")
    info.set_montage(mne.channels.make_standard_montage(name))
    return np.array([ch["loc"][:3] for ch in info["chs"]])


def test_numbered_fif_channels_are_named_by_their_digitized_positions(tmp_path):
    import mne

    rng = np.random.default_rng(7)
    pos = _head_positions(SITES) + rng.normal(0, 0.002, (len(SITES), 3))  # ~3.5 mm digitization noise
    far = _head_positions(["Cz"])[0] + np.array([0.0, 0.0, 0.04])  # 4 cm above the scalp
    names = [f"EEG {i:03d}" for i in range(1, len(SITES) + 2)] + ["STI 014"]
    info = mne.create_info(names, 250.0, ["eeg"] * (len(SITES) + 1) + ["stim"])
    with info._unlock():
        for ch, p in zip(info["chs"], [*pos, far]):
            ch["loc"][:3] = p
            ch["coord_frame"] = mne.io.constants.FIFF.FIFFV_COORD_HEAD
    x = synth_signal(len(names), 250.0, 40, seed=8, ch_names=names).astype(np.float64) * 1e-6
    root = tmp_path / "src"
    root.mkdir()
    mne.io.RawArray(x, info, verbose="error").save(root / "numbered_raw.fif", verbose="error")
    store, row = _ingest_one(root / "numbered_raw.fif", root, tmp_path)
    assert row["status"] == "ingested"
    assert row["recording_row"]["ch_names"].split(",") == [s.upper() for s in SITES]
    attrs = store.recording_meta(row["recording_id"])["attrs"]
    mapping = {raw: (site, mm) for raw, site, mm in attrs["position_mapping"]}
    assert {raw: site for raw, (site, _) in mapping.items()} == {n: s.upper() for n, s in zip(names, SITES)}
    assert all(0 <= mm < 15 for _, mm in mapping.values())
    dropped = dict(attrs["dropped_channels"])
    far_name = names[len(SITES)]
    assert far_name not in mapping and "mm from the nearest site CZ" in dropped[far_name]
    assert dropped["STI 014"] == "non-EEG channel"


def test_position_mapping_gives_a_site_once_and_keeps_real_labels():
    from neurolm.positions import map_positions

    cz, c3, c5, ccp5 = _head_positions(["Cz", "C3", "C5", "CCP5"])
    got = map_positions(["EEG 001", "EEG 002", "C3", "EEG 003"], [cz + 0.001, cz + 0.006, c3, (c5 + ccp5) / 2])
    assert got.names == {"EEG 001": "CZ"}  # the closer of two candidates for Cz; "C3" is named by its label
    assert "EEG 001" in got.unmapped["EEG 002"]
    assert got.unmapped["EEG 003"].startswith("electrode position ambiguous")  # halfway between C5 and CCP5


@pytest.mark.parametrize("unit", ["uV", "µV", "μV", "mV", "V", "nV", "", "microvolts", "\xc2\xb5V"])
def test_voltage_spellings_are_kept(unit):
    from neurolm.readers.units import is_voltage

    assert is_voltage(unit)  # "\xc2\xb5V" is a UTF-8 µV read as latin-1 from an EDF header


@pytest.mark.parametrize("unit", ["µS", "uS", "degC", "°C", "%", "bpm", "Ohm", "mmHg"])
def test_other_units_are_not_voltages(unit):
    from neurolm.readers.units import non_voltage_reason

    assert non_voltage_reason(unit) == f"unit {unit} is not a voltage"
