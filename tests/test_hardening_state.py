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
