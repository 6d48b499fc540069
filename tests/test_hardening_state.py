"""Issue 11, items 1 and 3: no data loss between archives, no stale data after a change.

1. Two archives under one dataset name must not overwrite each other: the store
   remembers each dataset's root and refuses another one unless told it moved.
3. Every file a recording reads is fingerprinted (BrainVision .eeg/.vmrk, EEGLAB
   .fdt, FIF split parts), a changed one is re-ingested, the content hash covers
   the whole file, and a rebuild never reuses a marker whose source changed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurolm.errors import ConfigError
from neurolm.ingest.config import make_params
from neurolm.ingest.discover import recording_id_for
from neurolm.ingest.run import ingest
from neurolm.synth.writers import write_recording
from storage.signal_store import SignalStore

SF = 250.0
NAMES = ("Fp1", "Fp2", "Cz")


def _signal(seed: int, seconds: float = 30.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=20.0, size=(len(NAMES), int(seconds * SF)))


def _edf(path: Path, seed: int) -> None:
    write_recording(path, "edf", _signal(seed), SF, NAMES)


def _stored(store_url: str, rid: str) -> np.ndarray:
    return np.asarray(SignalStore.open(store_url).read_signal(rid))


def _catalog(store_url: str):
    return SignalStore.open(store_url).read_table("catalog").set_index("recording_id")


# ----------------------------------------------------------------------------- item 1: one dataset, one root


def test_second_archive_with_the_same_folder_name_is_refused(tmp_path):
    a, b = tmp_path / "site_a" / "eeg", tmp_path / "site_b" / "eeg"
    _edf(a / "sub01" / "r.edf", 1)
    _edf(a / "sub02" / "r.edf", 2)
    _edf(b / "sub01" / "r.edf", 3)
    store = str(tmp_path / "store")
    ingest(make_params(source=str(a), store=store))
    rid = recording_id_for("eeg", "sub01/r.edf")
    before = _stored(store, rid)

    with pytest.raises(ConfigError) as err:
        ingest(make_params(source=str(b), store=store))
    msg = str(err.value)
    assert str(a) in msg and str(b) in msg and "--dataset NAME" in msg and "--moved" in msg
    # site_a's recordings are untouched and none of its files is marked removed
    np.testing.assert_array_equal(_stored(store, rid), before)
    cat = _catalog(store)
    assert set(cat["status"]) == {"ingested"} and all(p.startswith(str(a)) for p in cat["path"])

    # under its own name site_b is a second dataset beside the first
    s = ingest(make_params(source=str(b), store=store, dataset="eeg_b"))
    assert s["ingested"] == 1
    cat = _catalog(store)
    assert sorted(cat["dataset"]) == ["eeg", "eeg", "eeg_b"] and set(cat["status"]) == {"ingested"}
    np.testing.assert_array_equal(_stored(store, rid), before)


def test_slug_alike_folder_names_do_not_share_a_dataset(tmp_path):
    a, b = tmp_path / "x" / "EEG-2020", tmp_path / "y" / "eeg_2020"
    _edf(a / "s1" / "r.edf", 1)
    _edf(b / "s1" / "r.edf", 2)
    store = str(tmp_path / "store")
    ingest(make_params(source=str(a), store=store))
    with pytest.raises(ConfigError, match="eeg_2020"):
        ingest(make_params(source=str(b), store=store))


def test_moved_archive_is_accepted_with_moved_and_nothing_is_redone(tmp_path):
    a = tmp_path / "old" / "eeg"
    _edf(a / "sub01" / "r.edf", 1)
    _edf(a / "sub02" / "r.edf", 2)
    store = str(tmp_path / "store")
    ingest(make_params(source=str(a), store=store))
    b = tmp_path / "new" / "eeg"
    shutil.copytree(a, b)  # a copy keeps the bytes, not the mtimes
    shutil.rmtree(a)
    with pytest.raises(ConfigError, match="--moved"):
        ingest(make_params(source=str(b), store=store))
    s = ingest(make_params(source=str(b), store=store, moved=True))
    assert (s["ingested"], s["removed"]) == (0, 0)
    cat = _catalog(store)
    assert set(cat["status"]) == {"ingested"} and all(p.startswith(str(b)) for p in cat["path"])
    reg = json.loads((Path(store) / "datasets.json").read_text())["datasets"]["eeg"]
    assert reg["root"] == os.path.realpath(b) and reg["moved_from"][0]["root"] == os.path.realpath(a)
    # from now on the new root is the dataset's root: a plain rerun is accepted
    assert ingest(make_params(source=str(b), store=store))["ingested"] == 0


def test_store_from_before_the_registry_is_checked_against_its_catalog(tmp_path):
    a, b = tmp_path / "site_a" / "eeg", tmp_path / "site_b" / "eeg"
    _edf(a / "sub01" / "r.edf", 1)
    _edf(b / "sub01" / "r.edf", 2)
    store = str(tmp_path / "store")
    ingest(make_params(source=str(a), store=store))
    (Path(store) / "datasets.json").unlink()  # as written by a release without the registry
    with pytest.raises(ConfigError, match="from outside"):
        ingest(make_params(source=str(b), store=store))
    assert ingest(make_params(source=str(a), store=store))["ingested"] == 0  # its own root is fine


def test_dataset_adapter_refuses_another_root(tmp_path):
    from neurolm.datasets.ingest import ingest_dataset, make_dataset_params
    from neurolm.datasets.synth import synth_dataset

    m = synth_dataset("workload", tmp_path / "one" / "wl", seed=5)
    store = str(tmp_path / "store")
    ingest_dataset(make_dataset_params(dataset="workload", root=m["root"], store=store))
    other = tmp_path / "two" / "wl"
    shutil.copytree(m["root"], other)
    with pytest.raises(ConfigError) as err:
        ingest_dataset(make_dataset_params(dataset="workload", root=str(other), store=store))
    assert os.path.realpath(m["root"]) in str(err.value) and str(other) in str(err.value)
    assert "--moved" in str(err.value)
    s = ingest_dataset(make_dataset_params(dataset="workload", root=str(other), store=store, moved=True))
    assert s["n_ingested"] == 0


def test_cli_passes_moved_to_both_ingest_commands():
    from neurolm.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["ingest", "src", "--store", "s", "--moved"]).moved is True
    assert parser.parse_args(["ingest", "src", "--store", "s"]).moved is False
    assert parser.parse_args(["ingest-dataset", "hmc", "root", "--store", "s", "--moved"]).moved is True


# ----------------------------------------------------------------------------- item 3: every file, whole files


def _ingest(src: Path, store: str) -> dict:
    return ingest(make_params(source=str(src), store=store, dataset="d"))


def _replace_with(dst: Path, fresh: Path) -> None:
    """Replace ``dst`` with ``fresh``'s bytes as a new file (what a re-export or a copy does)."""
    tmp = dst.with_name(dst.name + ".new")
    shutil.copyfile(fresh, tmp)
    os.replace(tmp, dst)


def _fresh(tmp_path: Path, src: Path, rid: str) -> np.ndarray:
    """What a fresh store makes of ``src`` now: the reference a re-ingest must match."""
    store = str(tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}")
    _ingest(src, store)
    return _stored(store, rid)


def test_replaced_brainvision_eeg_is_reingested(tmp_path):
    src, other = tmp_path / "src", tmp_path / "other"
    vhdr = write_recording(src / "s1" / "r.vhdr", "brainvision", _signal(1), SF, NAMES)
    write_recording(other / "r.vhdr", "brainvision", _signal(2), SF, NAMES)
    store = str(tmp_path / "store")
    _ingest(src, store)
    rid = recording_id_for("d", "s1/r.vhdr")
    before = _stored(store, rid)
    _replace_with(vhdr.with_suffix(".eeg"), other / "r.eeg")  # the header is untouched
    s = _ingest(src, store)
    assert (s["changed"], s["ingested"]) == (1, 1)
    after = _stored(store, rid)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _fresh(tmp_path, src, rid))


def test_replaced_brainvision_vmrk_is_noticed(tmp_path):
    src = tmp_path / "src"
    vhdr = write_recording(src / "s1" / "r.vhdr", "brainvision", _signal(1), SF, NAMES)
    store = str(tmp_path / "store")
    _ingest(src, store)
    vmrk = vhdr.with_suffix(".vmrk")
    vmrk.write_text(vmrk.read_text() + "Mk2=Comment,edited,100,1,0\n")
    s = _ingest(src, store)
    assert (s["changed"], s["ingested"]) == (1, 1)
    assert _ingest(src, store)["changed"] == 0  # and the next run is quiet again


def _eeglab_with_fdt(path: Path, data_uv: np.ndarray) -> None:
    """An EEGLAB .set whose samples live in a separate .fdt (EEG.data names the file)."""
    import scipy.io as sio

    write_recording(path, "eeglab", data_uv, SF, NAMES)
    mat = {k: v for k, v in sio.loadmat(path).items() if not k.startswith("__")}
    samples = np.asarray(mat["data"], dtype="<f4")
    mat["data"] = mat["datfile"] = path.with_suffix(".fdt").name
    sio.savemat(path, mat, appendmat=False)
    samples.T.tofile(path.with_suffix(".fdt"))  # points x channels, float32


def test_replaced_eeglab_fdt_is_reingested(tmp_path):
    src, other = tmp_path / "src", tmp_path / "other"
    _eeglab_with_fdt(src / "s1" / "r.set", _signal(1))
    _eeglab_with_fdt(other / "r.set", _signal(2))
    store = str(tmp_path / "store")
    _ingest(src, store)
    rid = recording_id_for("d", "s1/r.set")
    before = _stored(store, rid)
    _replace_with(src / "s1" / "r.fdt", other / "r.fdt")
    s = _ingest(src, store)
    assert (s["changed"], s["ingested"]) == (1, 1)
    after = _stored(store, rid)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _fresh(tmp_path, src, rid))


def test_edited_fif_split_part_is_reingested(tmp_path):
    import mne

    src = tmp_path / "src" / "s1"
    src.mkdir(parents=True)
    info = mne.create_info(list(NAMES), SF, "eeg")
    raw = mne.io.RawArray(_signal(1, seconds=600.0) * 1e-6, info, verbose="error")
    raw.save(src / "r_raw.fif", split_size="2MB", buffer_size_sec=1.0, overwrite=True, verbose="error")
    part = src / "r_raw-1.fif"
    assert part.exists()  # the recording really is split
    store = str(tmp_path / "store")
    _ingest(tmp_path / "src", store)
    rid = recording_id_for("d", "s1/r_raw.fif")
    before = _stored(store, rid)
    # change one sample of the second part in place (same size): its float32 big-endian bytes
    last = mne.io.read_raw_fif(src / "r_raw.fif", verbose="error").get_data()[0, -100]
    value = np.asarray([last], dtype=">f4").tobytes()
    blob = part.read_bytes()
    assert blob.count(value) == 1
    part.write_bytes(blob.replace(value, np.asarray([1e-3], dtype=">f4").tobytes()))
    s = _ingest(tmp_path / "src", store)
    assert s["ingested"] >= 1
    after = _stored(store, rid)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _fresh(tmp_path, tmp_path / "src", rid))


def test_same_size_edit_in_the_middle_of_a_large_file_is_noticed(tmp_path):
    from neurolm.ingest.catalog import catalog_row, content_hash, diff_catalog
    from neurolm.ingest.discover import discover

    big = tmp_path / "src" / "s1" / "big.edf"
    big.parent.mkdir(parents=True)
    size = 80 * 2**20  # above the 64 MiB the old rule hashed only the edges of
    with open(big, "wb") as fh:
        fh.truncate(size)
    files = discover(str(tmp_path / "src"), "d")
    prev = pd.DataFrame([catalog_row(files[0], status="ingested", reason=None,
                                     content_hash=content_hash(str(big)), run_id="r1")])
    with open(big, "r+b") as fh:  # one byte in the middle, same size, new mtime
        fh.seek(size // 2)
        fh.write(b"\x01")
    d = diff_catalog(discover(str(tmp_path / "src"), "d"), prev, "d", {files[0].item.recording_id})
    assert [f.rel_path for f in d.changed] == ["s1/big.edf"]


def test_quarantined_for_a_missing_eeg_is_retried_when_it_appears(tmp_path):
    src = tmp_path / "src"
    vhdr = write_recording(src / "s1" / "r.vhdr", "brainvision", _signal(1), SF, NAMES)
    eeg = vhdr.with_suffix(".eeg")
    kept = tmp_path / "r.eeg"
    shutil.move(str(eeg), str(kept))
    store = str(tmp_path / "store")
    assert _ingest(src, store)["quarantined"] == 1
    assert _ingest(src, store)["quarantined"] == 0  # unchanged: not retried
    shutil.move(str(kept), str(eeg))
    s = _ingest(src, store)
    assert s["ingested"] == 1
    assert _catalog(store).loc[recording_id_for("d", "s1/r.vhdr"), "status"] == "ingested"


def test_unchanged_rerun_reads_no_file(tmp_path, monkeypatch):
    """A nightly run over an unchanged archive is a metadata walk: nothing is hashed or read."""
    import neurolm.ingest.catalog as catalog

    src = tmp_path / "src"
    write_recording(src / "s1" / "r.vhdr", "brainvision", _signal(1), SF, NAMES)
    _eeglab_with_fdt(src / "s2" / "r.set", _signal(2))
    _edf(src / "s3" / "r.edf", 3)
    store = str(tmp_path / "store")
    assert _ingest(src, store)["ingested"] == 3

    def no_reads(*_a, **_k):
        raise AssertionError("an unchanged archive was hashed")

    monkeypatch.setattr(catalog, "content_hash", no_reads)
    s = _ingest(src, store)
    assert (s["changed"], s["new"], s["ingested"]) == (0, 0, 0)


def test_rebuild_back_to_an_earlier_config_rereads_changed_sources(tmp_path):
    from neurolm.ingest.rebuild import make_rebuild_params, rebuild_store

    src = tmp_path / "src"
    for i in range(2):
        _edf(src / f"s{i}" / "r.edf", i)
    store = str(tmp_path / "store")
    _ingest(src, store)
    first = SignalStore.open(store).version_id
    rebuild_store(make_rebuild_params(store=store, notch_hz=50.0))
    assert SignalStore.open(store).version_id != first
    _edf(src / "s0" / "r.edf", 99)  # the source changes while the store is at the other config
    assert _ingest(src, store)["ingested"] == 1
    back = rebuild_store(make_rebuild_params(store=store, notch_hz=60.0))
    assert back.new_version == first  # the earlier version directory, with its old markers
    rid = recording_id_for("d", "s0/r.edf")
    np.testing.assert_array_equal(_stored(store, rid), _fresh(tmp_path, src, rid))
    cat = _catalog(store)
    assert cat.loc[rid, "content_hash"] == SignalStore.open(store).recording_meta(rid)["attrs"]["source_hash"]


def test_touched_part_is_not_reingested(tmp_path):
    """Only an mtime moved (a touch, a copy that kept the bytes): hashed, found equal, its stats refreshed."""
    src = tmp_path / "src"
    vhdr = write_recording(src / "s1" / "r.vhdr", "brainvision", _signal(1), SF, NAMES)
    store = str(tmp_path / "store")
    _ingest(src, store)
    eeg = vhdr.with_suffix(".eeg")
    t = eeg.stat().st_mtime + 60
    os.utime(eeg, (t, t))
    s = _ingest(src, store)
    assert (s["changed"], s["ingested"]) == (0, 0)
    parts = json.loads(_catalog(store).loc[recording_id_for("d", "s1/r.vhdr"), "parts"])
    assert ["r.eeg", eeg.stat().st_size, t] in parts


def test_catalog_without_parts_is_checked_once_against_the_commit_markers(tmp_path):
    src = tmp_path / "src"
    write_recording(src / "s1" / "r.vhdr", "brainvision", _signal(1), SF, NAMES)
    _edf(src / "s2" / "r.edf", 2)
    store = str(tmp_path / "store")
    _ingest(src, store)
    st = SignalStore.open(store)
    st.write_table("catalog", st.read_table("catalog").drop(columns=["parts"]))  # the column went missing
    s = _ingest(src, store)
    # the multi-file recording is handed to the worker, whose commit marker knows its parts: stat, no re-read
    assert (s["changed"], s["ingested"], s["skipped"]) == (1, 0, 1)
    assert "r.eeg" in _catalog(store).loc[recording_id_for("d", "s1/r.vhdr"), "parts"]
    assert _ingest(src, store)["changed"] == 0
