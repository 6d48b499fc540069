"""Channel vocabulary: real-world label spellings, selection, ordering, duplicates."""

from __future__ import annotations

import warnings

import pytest

from neurolm.errors import BadInputError, ConfigError
from neurolm.vocab import (
    BIPOLAR,
    PAD_INDEX,
    TUH_23,
    VOCAB,
    index_of,
    normalize_channel_name,
    select_channels,
)

# (raw label as found in files, expected vocabulary name or None, expected kind)
SPELLINGS = [
    # TUH EEG (01_tcp_ar / 02_tcp_le)
    ("EEG FP1-REF", "FP1", "eeg"),
    ("EEG FP1-LE", "FP1", "eeg"),
    ("EEG T3-REF", "T3", "eeg"),
    ("EEG T4-LE", "T4", "eeg"),
    ("EEG A1-REF", "A1", "eeg"),
    ("EEG A2-LE", "A2", "eeg"),
    ("EEG T1-REF", "T1", "eeg"),
    ("EEG CZ-REF", "CZ", "eeg"),
    ("EEG F3 -REF", "F3", "eeg"),
    ("EEG EKG1-REF", None, "non_eeg"),
    ("EEG ROC-REF", None, "non_eeg"),
    ("EEG LOC-REF", None, "non_eeg"),
    ("PHOTIC-REF", None, "non_eeg"),
    ("IBI", None, "non_eeg"),
    ("BURSTS", None, "non_eeg"),
    ("SUPPR", None, "non_eeg"),
    ("EEG 26-REF", None, "unknown"),
    ("EEG 30-LE", None, "unknown"),
    ("EEG C3P-REF", None, "unknown"),  # TUH's C3P is not a vocabulary site (NeuroLM drops it)
    ("EEG SP1-REF", None, "unknown"),
    ("DC1-DC", None, "non_eeg"),
    # case, dots, padding
    ("Fp1.", "FP1", "eeg"),
    ("FP1 ", "FP1", "eeg"),
    ("  Fp1", "FP1", "eeg"),
    ("Fp1", "FP1", "eeg"),
    ("fp1", "FP1", "eeg"),
    ("FP1\x00\x00", "FP1", "eeg"),
    ("EDF Annotations", None, "non_eeg"),
    ("Status", None, "non_eeg"),
    ("STI 014", None, "non_eeg"),
    # EEGLAB / BrainVision 10-10 names
    ("Fz", "FZ", "eeg"),
    ("FCz", "FCZ", "eeg"),
    ("POz", "POZ", "eeg"),
    ("Oz", "OZ", "eeg"),
    ("Iz", "IZ", "eeg"),
    ("CP5", "CP5", "eeg"),
    ("I1", "I1", "eeg"),
    # HMC (PhysioNet sleep): mastoid-referenced EEG, EOG/EMG/ECG dropped
    ("EEG F4-M1", "F4", "eeg"),
    ("EEG C4-M1", "C4", "eeg"),
    ("EEG O2-M1", "O2", "eeg"),
    ("EEG C3-M2", "C3", "eeg"),
    ("EOG E1-M2", None, "non_eeg"),
    ("EOG E2-M2", None, "non_eeg"),
    ("EMG chin", None, "non_eeg"),
    ("ECG", None, "non_eeg"),
    # SEED (.cnt, 62 ch + refs/EOG)
    ("FP1", "FP1", "eeg"),
    ("CB1", "CB1", "eeg"),
    ("CB2", "CB2", "eeg"),
    ("VEO", None, "non_eeg"),
    ("HEO", None, "non_eeg"),
    ("M1", "M1", "eeg"),
    # Workload (EEGMAT)
    ("EEG Fp1", "FP1", "eeg"),
    ("EEG T5", "T5", "eeg"),
    ("EEG A2-A1", None, "reference"),
    ("ECG ECG", None, "non_eeg"),
    # bipolar TCP pairs
    ("EEG FP1-F7", "FP1-F7", "bipolar"),
    ("Fp1-F7", "FP1-F7", "bipolar"),
    ("FP1 - F7", "FP1-F7", "bipolar"),
    ("fp2_f8", "FP2-F8", "bipolar"),
    ("EEG C4-P4", "C4-P4", "bipolar"),
    # old and new temporal names stay distinct
    ("T3", "T3", "eeg"),
    ("T7", "T7", "eeg"),
    ("T5", "T5", "eeg"),
    ("P7", "P7", "eeg"),
    # the mixed-case "h" sites (never matched in the original)
    ("FTT9h", "FTT9h", "eeg"),
    ("FTT9H", "FTT9h", "eeg"),
    ("tpp10h", "TPP10h", "eeg"),
    # pad is never a channel
    ("pad", None, "unknown"),
    ("PAD", None, "unknown"),
    ("EEG PAD-REF", None, "unknown"),
    ("", None, "unknown"),
]


@pytest.mark.parametrize(("raw", "name", "kind"), SPELLINGS)
def test_real_world_spellings(raw: str, name: str | None, kind: str) -> None:
    ch = normalize_channel_name(raw)
    assert (ch.name, ch.kind) == (name, kind), raw
    if name is not None:
        assert ch.index is not None and VOCAB[ch.index] == name and ch.index != PAD_INDEX


def test_enough_spellings_covered() -> None:
    assert len({raw for raw, _, _ in SPELLINGS}) >= 40


def test_vocabulary_layout_matches_neurolm() -> None:
    assert len(VOCAB) == 139 and PAD_INDEX == 136 and VOCAB[137:] == ("I1", "I2")
    assert [index_of(n) for n in TUH_23] == [0, 2, 17, 21, 39, 43, 61, 65, 80, 82, 15, 23,
                                             88, 90, 89, 91, 94, 95, 19, 41, 63, 112, 113]
    assert index_of("T3") != index_of("T7") and index_of("T3") == 88 and index_of("T7") == 37
    assert set(BIPOLAR) <= set(VOCAB)
    with pytest.raises(KeyError):
        index_of("pad")


def test_tuh_file_selection_keeps_file_order_and_drops_the_rest() -> None:
    raw = ["EEG FP1-REF", "EEG FP2-REF", "EEG EKG1-REF", "EEG T3-REF", "PHOTIC-REF",
           "EEG 26-REF", "EEG A1-REF", "IBI", "BURSTS", "SUPPR", "EEG C3P-REF"]
    sel = select_channels(raw)
    assert sel.names == ("FP1", "FP2", "T3", "A1")
    assert sel.positions == (0, 1, 3, 6)
    assert sel.indices == (0, 2, 88, 94)
    reasons = dict(sel.dropped)
    assert reasons["EEG EKG1-REF"] == "non-EEG channel"
    assert reasons["EEG 26-REF"] == "not in vocabulary"
    assert len(sel.dropped) == len(raw) - 4


def test_duplicates_first_wins_with_warning() -> None:
    with pytest.warns(UserWarning, match="duplicate channel 'FP1'"):
        sel = select_channels(["Fp1", "EEG FP1-REF", "Cz", "CZ."])
    assert sel.names == ("FP1", "CZ") and sel.positions == (0, 2)
    assert ("EEG FP1-REF", "duplicate of 'Fp1'") in sel.dropped
    # deterministic: the same input gives the same answer every time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert select_channels(["Fp1", "EEG FP1-REF", "Cz", "CZ."]) == sel


def test_reorder_follows_allowed_order_tuab_23() -> None:
    # a TUH file lists channels in its own order, with extras
    file_order = ["EEG " + n + "-REF" for n in reversed(TUH_23)] + ["EEG EKG1-REF", "EEG T7-REF"]
    sel = select_channels(file_order, allowed=TUH_23, reorder=True)
    assert sel.names == TUH_23
    assert [file_order[p] for p in sel.positions] == ["EEG " + n + "-REF" for n in TUH_23]
    assert ("EEG T7-REF", "T7 not in the selected channel set") in sel.dropped
    # without reorder, the allowed subset keeps file order
    plain = select_channels(file_order, allowed=TUH_23)
    assert plain.names == tuple(reversed(TUH_23))


def test_reorder_hmc_and_workload_spellings() -> None:
    hmc = ["EEG F4-M1", "EEG C4-M1", "EEG O2-M1", "EEG C3-M2", "EMG chin", "EOG E1-M2", "EOG E2-M2", "ECG"]
    sel = select_channels(hmc, allowed=("C3", "C4", "O2", "F4"), reorder=True)
    assert sel.names == ("C3", "C4", "O2", "F4") and sel.positions == (3, 1, 2, 0)
    work_order = ("Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6",
                  "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz")
    work_file = ["EEG " + n for n in sorted(work_order)] + ["EEG A2-A1", "ECG ECG"]
    sel = select_channels(work_file, allowed=work_order, reorder=True)
    assert sel.names == tuple(n.upper() for n in work_order)


def test_reorder_missing_channel_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="missing channels: T1, T2"):
        select_channels(["EEG " + n + "-REF" for n in TUH_23[:-2]], allowed=TUH_23, reorder=True)


def test_invalid_allowed_is_config_error() -> None:
    with pytest.raises(ConfigError, match="not a vocabulary channel"):
        select_channels(["Fp1"], allowed=("FP1", "XYZ"))
    with pytest.raises(ConfigError, match="reorder"):
        select_channels(["Fp1"], reorder=True)
    with pytest.raises(ConfigError):
        select_channels(["Fp1"], allowed=("pad",))


def test_biosemi_positions_are_not_ten_twenty() -> None:
    raw = [f"A{i}" for i in range(1, 33)] + [f"B{i}" for i in range(1, 33)] + ["EXG1", "Status"]
    sel = select_channels(raw)
    assert sel.names == ()  # A1/A2 here are cap positions, not ear electrodes; C3-like ones too
    assert dict(sel.dropped)["A1"] == "BioSemi cap position, not a 10-20 site"
    # a 10-20 file with ear electrodes and two bare EOG labels is not mistaken for BioSemi
    sel = select_channels(["Fp1", "C3", "A1", "A2", "E1", "E2"])
    assert sel.names == ("FP1", "C3", "A1", "A2")


def test_pad_never_selected() -> None:
    sel = select_channels(["pad", "PAD", "EEG PAD-REF", "Fz"])
    assert sel.names == ("FZ",) and PAD_INDEX not in sel.indices
