"""Path-based metadata for BIDS, TUH and other trees, on real-looking file trees."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from neurolm.errors import ConfigError
from neurolm.ingest.layouts import (
    SourceConfig,
    detect_layout,
    extra_items,
    infer_metadata,
    load_source_configs,
    metadata_for,
    montage_from_channels,
)

REPO = Path(__file__).resolve().parents[1]


def _touch(root: Path, rel: str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory) -> Path:
    """A real BIDS tree written by mne-bids (offline), two subjects, one with sessions."""
    import mne_bids

    root = tmp_path_factory.mktemp("bids") / "ds-test"
    info = mne.create_info(["Fp1", "Fp2", "Cz"], 200.0, "eeg")
    rng = np.random.default_rng(0)
    for sub, ses, sex in (("01", "a", 2), ("02", None, 1)):
        raw = mne.io.RawArray(rng.normal(size=(3, 2000)) * 1e-5, info.copy(), verbose=False)
        raw.info["line_freq"] = 50
        raw.info["subject_info"] = {"sex": sex, "hand": 1}
        path = mne_bids.BIDSPath(subject=sub, session=ses, task="rest", run=1, root=root, datatype="eeg")
        mne_bids.write_raw_bids(raw, path, format="BrainVision", allow_preload=True,
                                overwrite=True, verbose=False)
    mne_bids.make_dataset_description(path=root, name="Resting State Study", overwrite=True,
                                      verbose=False)
    return root


def test_bids_entities_and_participants(bids_root: Path):
    vhdr = bids_root / "sub-01/ses-a/eeg/sub-01_ses-a_task-rest_run-1_eeg.vhdr"
    assert vhdr.is_file()
    assert detect_layout(bids_root, vhdr) == "bids"
    meta = infer_metadata(bids_root, vhdr)
    assert meta["layout"] == "bids"
    assert (meta["subject"], meta["session"]) == ("01", "a")
    assert meta["dataset"] == "resting_state_study"
    assert meta["subject_key"] == "bids:resting_state_study:01"
    assert meta["extra"]["task"] == "rest" and meta["extra"]["run"] == "1"
    assert meta["extra"]["participant_sex"] == "F"  # from participants.tsv
    # no session: empty string, dataset name overridable
    vhdr2 = bids_root / "sub-02/eeg/sub-02_task-rest_run-1_eeg.vhdr"
    meta2 = infer_metadata(bids_root, vhdr2, dataset="rs")
    assert (meta2["subject"], meta2["session"], meta2["subject_key"]) == ("02", "", "bids:rs:02")
    assert meta2["extra"]["participant_sex"] == "M"


def test_bids_file_outside_naming_uses_directories(bids_root: Path):
    odd = _touch(bids_root, "sub-01/ses-a/eeg/recording_copy.edf")
    meta = infer_metadata(bids_root, odd)
    assert (meta["subject"], meta["session"]) == ("01", "a")


@pytest.mark.parametrize(
    "rel, subject, session, montage, extra",
    [
        ("edf/000/aaaaaaav/s004_2013_03_20/01_tcp_ar/aaaaaaav_s004_t000.edf",
         "aaaaaaav", "s004", "01_tcp_ar", {"token": "t000", "session_date": "2013_03_20"}),
        ("edf/train/normal/01_tcp_ar/aaaaaaav_s004_t001.edf",
         "aaaaaaav", "s004", "01_tcp_ar", {"tuh_split": "train", "tuh_label": "normal", "token": "t001"}),
        ("edf/eval/abnormal/01_tcp_ar/aaaaakfo_s005_t000.edf",
         "aaaaakfo", "s005", "01_tcp_ar", {"tuh_split": "eval", "tuh_label": "abnormal"}),
        ("edf/aaaaafkz/s001_2003/02_tcp_le/aaaaafkz_s001_t000.edf",
         "aaaaafkz", "s001", "02_tcp_le", {"session_date": "2003"}),
        ("v1/03_tcp_ar_a/00000258/s002_2003_07_21/00000258_s002_t000.edf",
         "00000258", "s002", "03_tcp_ar_a", {}),
        ("edf/train/aaaaaaar/aaaaaaar_00000001.edf",
         "aaaaaaar", "", None, {"tuh_split": "train", "index": "00000001"}),
    ],
)
def test_tuh_paths(tmp_path: Path, rel, subject, session, montage, extra):
    path = _touch(tmp_path, rel)
    meta = infer_metadata(tmp_path, path)
    assert meta["layout"] == "tuh"
    assert (meta["subject"], meta["session"]) == (subject, session)
    assert meta["subject_key"] == f"tuh:{subject}"
    assert meta["extra"].get("montage") == montage
    for k, v in extra.items():
        assert meta["extra"][k] == v


def test_tuh_corpora_share_subject_keys(tmp_path: Path):
    """The held-out registry relies on TUAB and TUEG files of one patient having one key."""
    tuab = _touch(tmp_path / "tuab", "edf/eval/abnormal/01_tcp_ar/aaaaakfo_s004_t000.edf")
    tueg = _touch(tmp_path / "tueg", "edf/012/aaaaakfo/s004_2011_01_01/01_tcp_ar/aaaaakfo_s004_t000.edf")
    tuev = _touch(tmp_path / "tuev", "edf/train/aaaaakfo/aaaaakfo_00000003.edf")
    keys = {infer_metadata(tmp_path / d, p, dataset=d)["subject_key"]
            for d, p in (("tuab", tuab), ("tueg", tueg), ("tuev", tuev))}
    assert keys == {"tuh:aaaaakfo"}


def test_tuev_eval_names(tmp_path: Path):
    path = _touch(tmp_path, "edf/eval/032/spsw_032_a_.edf")
    meta = infer_metadata(tmp_path, path, dataset="tuev")
    assert meta["subject"] == "eval032"
    assert meta["subject_key"] == "tuh:tuev_eval_032"
    assert meta["extra"]["event_class"] == "spsw"


def test_montage_from_first_channel(tmp_path: Path):
    path = _touch(tmp_path, "flat/aaaaaaav_s001_t000.edf")
    le = ("EEG FP1-LE", "EEG FP2-LE", "EEG A1-LE")
    ar = ("EEG FP1-REF", "EEG FP2-REF", "EEG A1-REF", "EEG A2-REF")
    ar_a = ("EEG FP1-REF", "EEG FP2-REF", "EEG CZ-REF")
    assert infer_metadata(tmp_path, path, ch_names=le)["extra"]["montage"] == "02_tcp_le"
    assert infer_metadata(tmp_path, path, ch_names=ar)["extra"]["montage"] == "01_tcp_ar"
    assert infer_metadata(tmp_path, path, ch_names=ar_a)["extra"]["montage"] == "03_tcp_ar_a"
    assert "montage" not in infer_metadata(tmp_path, path)["extra"]
    assert montage_from_channels(("Fp1", "Cz")) is None
    # the path wins over the channels
    p2 = _touch(tmp_path, "x/02_tcp_le/aaaaaaav_s001_t001.edf")
    assert infer_metadata(tmp_path, p2, ch_names=ar)["extra"]["montage"] == "02_tcp_le"


@pytest.mark.parametrize(
    "rel, subject, session",
    [
        ("P017/visit2/eeg/night.edf", "P017", "visit2"),
        ("P017/visit2/night.edf", "P017", "visit2"),
        ("P018/rest.bdf", "P018", ""),
        ("lonely_recording.edf", "lonely_recording", ""),
    ],
)
def test_generic_fallback(tmp_path: Path, rel, subject, session):
    root = tmp_path / "Clinic Export"
    path = _touch(root, rel)
    assert detect_layout(root, path) == "generic"
    meta = infer_metadata(root, path)
    assert (meta["layout"], meta["subject"], meta["session"]) == ("generic", subject, session)
    assert meta["subject_key"] == f"clinic_export:{subject}"
    assert meta["extra"] == {}


def test_forced_layout_and_family(tmp_path: Path):
    path = _touch(tmp_path, "export/aaaaaaav_s004_t000.edf")
    generic = infer_metadata(tmp_path, path, layout="generic", dataset="exp")
    assert generic["subject"] == "export" and generic["subject_key"] == "exp:export"
    # forcing tuh on a non-TUH name falls back to the generic rule rather than failing
    other = _touch(tmp_path, "S1/a.edf")
    assert infer_metadata(tmp_path, other, layout="tuh", dataset="exp")["subject"] == "S1"
    fam = infer_metadata(tmp_path, other, layout="generic", dataset="exp", family="tuh")
    assert fam["subject_key"] == "tuh:S1"
    with pytest.raises(ConfigError):
        infer_metadata(tmp_path, path, layout="nope")  # type: ignore[arg-type]
    assert extra_items(infer_metadata(tmp_path, path)) == (("token", "t000"), ("tuh_le", "skip"))


def test_source_configs_example_and_errors(tmp_path: Path):
    cfgs = load_source_configs(REPO / "configs" / "sources.example.yaml")
    assert cfgs["tuab"].mains_hz == 50 and cfgs["tueg"].mains_hz == 60
    assert cfgs["tuab"].layout == "tuh"
    with pytest.raises(ValueError):
        cfgs["tuab"].mains_hz = 60  # frozen
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  x:\n    mains_hz: 400\n")
    with pytest.raises(ConfigError, match="mains_hz"):
        load_source_configs(bad)
    bad.write_text("sources:\n  x:\n    colour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        load_source_configs(bad)
    bad.write_text("nothing: here\n")
    with pytest.raises(ConfigError):
        load_source_configs(bad)
    with pytest.raises(ConfigError, match="no root"):
        metadata_for(SourceConfig(name="x"), tmp_path / "a.edf")
    src = SourceConfig(name="tuab", root=str(tmp_path), layout="tuh")
    p = _touch(tmp_path, "edf/train/normal/01_tcp_ar/aaaaaaav_s004_t000.edf")
    assert metadata_for(src, p)["dataset"] == "tuab"


def test_bids_on_an_object_store():
    """BIDS detection and participants.tsv through fsspec (e.g. OpenNeuro on S3), here memory://."""
    import fsspec

    mem = fsspec.filesystem("memory")
    mem.pipe("/oneuro/dataset_description.json", b'{"Name": "Open Set", "BIDSVersion": "1.8.0"}')
    mem.pipe("/oneuro/participants.tsv", b"participant_id\tage\nsub-07\t31\n")
    path = "memory://oneuro/sub-07/ses-2/eeg/sub-07_ses-2_task-rest_eeg.edf"
    mem.pipe(path, b"")
    meta = infer_metadata("memory://oneuro", path)
    assert (meta["layout"], meta["subject"], meta["session"]) == ("bids", "07", "2")
    assert meta["subject_key"] == "bids:open_set:07" and meta["extra"]["participant_age"] == "31"
    tuh = "memory://tuh/edf/train/normal/01_tcp_ar/aaaaaaav_s004_t000.edf"
    assert infer_metadata("memory://tuh", tuh)["subject_key"] == "tuh:aaaaaaav"


def test_le_montage_files_are_skipped_like_the_reference_unless_kept(tmp_path: Path):
    """NeuroLM's TUH script drops -LE files; so do we by default, with the reason in the catalog row."""
    from neurolm.ingest import discover, open_store, process_batch
    from neurolm.ingest.layouts import le_montage_reason
    from neurolm.synth import synth_signal, write_recording

    sites = ("FP1", "FP2", "C3", "C4", "O1", "O2", "CZ", "A1", "A2")
    root = tmp_path / "tueg"
    for rel, suffix in (("000/aaaaaaaa/s001_2003/01_tcp_ar/aaaaaaaa_s001_t000.edf", "REF"),
                        ("000/aaaaaaab/s001_2003/02_tcp_le/aaaaaaab_s001_t000.edf", "LE"),
                        ("flat/aaaaaaac_s001_t000.edf", "LE")):  # no montage folder: the labels say -LE
        labels = [f"EEG {s}-{suffix}" for s in sites]
        write_recording(root / rel, "edf", synth_signal(len(sites), 250.0, 12, seed=1, ch_names=labels), 250.0, labels)
    store = open_store(str(tmp_path / "store"))
    by_default = {f.rel_path.split("/")[1]: f.item for f in discover(str(root), "tueg")}
    assert all(dict(i.extra)["tuh_le"] == "skip" for i in by_default.values())
    rows = {r["catalog_row"]["path"].rsplit("/", 1)[-1][:8]: r
            for r in process_batch(list(by_default.values()), store.url, store.version_id, run_id="r1")}
    assert rows["aaaaaaaa"]["status"] == "ingested"
    for sub in ("aaaaaaab", "aaaaaaac"):
        assert rows[sub]["status"] == "quarantined" and rows[sub]["reason"].startswith("TUH -LE montage (02_tcp_le)")
        assert rows[sub]["catalog_row"]["reason"] == rows[sub]["reason"]
    kept = [f.item for f in discover(str(root), "tueg", tuh_le="keep") if "aaaaaaaa" not in f.rel_path]
    again = process_batch(kept, store.url, store.version_id, run_id="r2")
    assert [r["status"] for r in again] == ["ingested", "ingested"]
    assert again[0]["recording_row"]["ch_names"].split(",")[:2] == ["FP1", "FP2"]
    # the rule alone: only TUH items that ask to skip, -REF never
    assert le_montage_reason({"tuh_le": "skip"}, ["EEG FP1-REF", "EEG A1-REF"]) is None
    assert le_montage_reason({"tuh_le": "keep", "montage": "02_tcp_le"}, ["EEG FP1-LE"]) is None
    assert le_montage_reason({}, ["EEG FP1-LE"]) is None  # generic/BIDS items carry no TUH policy
    with pytest.raises(ConfigError, match="tuh_le"):
        infer_metadata(tmp_path, root / "flat" / "aaaaaaac_s001_t000.edf", tuh_le="maybe")


def test_le_option_defaults_to_skip_everywhere():
    import argparse

    from neurolm.cli import ingest as cli_ingest
    from neurolm.ingest.config import IngestParams

    parser = argparse.ArgumentParser()
    cli_ingest.register(parser.add_subparsers())
    assert parser.parse_args(["ingest", "/data/tueg", "--store", "s"]).tuh_le == "skip"
    assert parser.parse_args(["ingest", "/data/tueg", "--store", "s", "--tuh-le", "keep"]).tuh_le == "keep"
    assert IngestParams(source="/data/tueg", store="s").tuh_le == "skip"
    assert SourceConfig(name="tueg", layout="tuh").tuh_le == "skip"
    with pytest.raises(ValueError):
        SourceConfig(name="tueg", tuh_le="drop")
