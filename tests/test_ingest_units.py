"""Ingest parameters, discovery and the catalog diff (no signals read)."""

from __future__ import annotations

import hashlib
import os

import fsspec
import pandas as pd
import pytest

from neurolm.errors import ConfigError
from neurolm.ingest.catalog import catalog_row, content_hash, diff_catalog, merge_rows
from neurolm.ingest.config import make_params
from neurolm.ingest.discover import discover, generic_metadata, recording_id_for


def _touch(path, data=b"x" * 100):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_params_validation_errors_are_clear(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with pytest.raises(ConfigError, match="does not exist"):
        make_params(source=str(tmp_path / "nope"), store=str(tmp_path / "st"))
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        make_params(source=str(src), store=str(tmp_path / "st"), workers=0)
    with pytest.raises(ConfigError, match="sum to 1"):
        make_params(source=str(src), store=str(tmp_path / "st"), split_fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ConfigError, match="inside the source"):
        make_params(source=str(src), store=str(src / "store"))
    # A store below a regular file can never be created, whoever runs (root included, as in CI).
    blocker = tmp_path / "plain-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"not writable \(.*plain-file is not a directory\)"):
        make_params(source=str(src), store=str(blocker / "deep" / "store"))
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        make_params(source=str(src), store=str(blocker))
    with pytest.raises(ConfigError, match="is not a directory"):
        make_params(source=str(blocker), store=str(tmp_path / "st"))
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.geteuid() != 0:  # root bypasses permission bits (the cases above hold for root too)
            with pytest.raises(ConfigError, match=r"not writable \(.*ro is read-only\)"):
                make_params(source=str(src), store=str(ro / "deep" / "store"))
    finally:
        os.chmod(ro, 0o755)
    p = make_params(source=str(src), store=str(tmp_path / "st"), mains_hz=50)
    assert p.dataset_name == "src" and p.mains_hz == 50
    with pytest.raises(Exception):
        p.workers = 3  # frozen


def test_discover_lists_entry_files_only_with_layout_metadata(tmp_path):
    root = tmp_path / "My Archive"
    for rel in ["s01/ses1/a.edf", "s01/ses1/b.BDF", "s02/c.vhdr", "s02/c.vmrk", "s02/c.eeg",
                "s03/d.set", "s03/d.fdt", "e.gdf", "notes.txt", ".hidden/x.edf", "s04/f.fif"]:
        _touch(root / rel)
    files = discover(str(root), "arch", notch_hz=50.0)
    rels = [f.rel_path for f in files]
    assert rels == ["e.gdf", "s01/ses1/a.edf", "s01/ses1/b.BDF", "s02/c.vhdr", "s03/d.set", "s04/f.fif"]
    by = {f.rel_path: f for f in files}
    assert (by["s01/ses1/a.edf"].item.subject, by["s01/ses1/a.edf"].item.session) == ("s01", "ses1")
    assert (by["s02/c.vhdr"].item.subject, by["s02/c.vhdr"].item.session) == ("s02", "")
    assert by["e.gdf"].item.subject == "e"
    assert by["s02/c.vhdr"].format == "brainvision" and by["s01/ses1/b.BDF"].format == "bdf"
    assert all(f.item.notch_hz == 50.0 and f.size == 100 for f in files)
    ids = [f.item.recording_id for f in files]
    assert len(set(ids)) == len(ids)
    # Stable: same relative path and dataset -> same id, whatever the root.
    assert recording_id_for("arch", "s01/ses1/a.edf") == by["s01/ses1/a.edf"].item.recording_id
    assert recording_id_for("arch", "a-b.edf") != recording_id_for("arch", "a_b.edf")
    assert generic_metadata("x/y/z/f.edf", "d") == {"subject": "x", "session": "y", "subject_key": "d:x", "extra": {}}


def test_discover_fsspec_memory_tree():
    mfs = fsspec.filesystem("memory")
    mfs.pipe("/neurolm-disc/sub1/r1.edf", b"abc")
    mfs.pipe("/neurolm-disc/sub2/r2.vhdr", b"abcd")
    mfs.pipe("/neurolm-disc/sub2/r2.eeg", b"abcd")
    try:
        files = discover("memory://neurolm-disc", "mem")
        assert [f.rel_path for f in files] == ["sub1/r1.edf", "sub2/r2.vhdr"]
        assert [f.item.subject for f in files] == ["sub1", "sub2"]
        assert files[0].size == 3
        assert content_hash(files[0].item.path).startswith("sha256:")
    finally:
        mfs.rm("/neurolm-disc", recursive=True)


def test_content_hash_covers_the_whole_file(tmp_path):
    p = _touch(tmp_path / "big.edf", b"a" * 5000 + b"b" * 5000)
    full = content_hash(str(p))
    assert full == "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
    p.write_bytes(b"a" * 4000 + b"c" + b"a" * 999 + b"b" * 5000)  # same size, one byte in the middle
    assert content_hash(str(p)) != full


def test_catalog_diff_new_changed_touched_removed(tmp_path):
    root = tmp_path / "src"
    for rel in ["a/1.edf", "a/2.edf", "b/3.edf", "b/4.edf"]:
        _touch(root / rel, rel.encode() * 10)
    files = discover(str(root), "d")
    first = diff_catalog(files, None, "d", committed=set())
    assert len(first.new) == 4 and first.changed == [] and not first.nothing_to_do
    rows = [catalog_row(f, status="ingested", reason=None, content_hash=content_hash(f.item.path), run_id="r1")
            for f in files]
    rows[3] = {**rows[3], "status": "quarantined", "reason": "bad header"}
    prev = pd.DataFrame(rows)
    committed = {r["recording_id"] for r in rows[:3]}
    again = diff_catalog(discover(str(root), "d"), prev, "d", committed)
    assert again.nothing_to_do and len(again.unchanged_rows) == 4
    # touch 1 (same bytes), change 2, delete 3, add 5; 4 stays quarantined
    t = os.path.getmtime(root / "a/1.edf") + 5
    os.utime(root / "a/1.edf", (t, t))
    (root / "a/2.edf").write_bytes(b"changed")
    (root / "b/3.edf").unlink()
    _touch(root / "c/5.edf")
    d = diff_catalog(discover(str(root), "d"), prev, "d", committed)
    assert [f.rel_path for f in d.new] == ["c/5.edf"]
    assert [f.rel_path for f in d.changed] == ["a/2.edf"]
    assert [r["path"].endswith("3.edf") for r in d.removed_rows] == [True]
    assert d.removed_rows[0]["status"] == "removed"
    touched = [r for r in d.unchanged_rows if r["path"].endswith("1.edf")][0]
    assert touched["mtime"] == t and touched["status"] == "ingested"
    # a lost commit marker forces a redo; other datasets' rows are ignored
    d2 = diff_catalog(discover(str(root), "d"), prev, "d", committed - {rows[0]["recording_id"]})
    assert "a/1.edf" in [f.rel_path for f in d2.changed]
    assert diff_catalog([], prev, "other", committed).nothing_to_do


def test_merge_rows_replaces_and_sorts():
    prev = pd.DataFrame([{"recording_id": "b", "v": 1}, {"recording_id": "a", "v": 1}])
    out = merge_rows(prev, [{"recording_id": "b", "v": 2}, {"recording_id": "c", "v": 3}], "recording_id")
    assert out.to_dict("records") == [{"recording_id": "a", "v": 1}, {"recording_id": "b", "v": 2},
                                      {"recording_id": "c", "v": 3}]


def test_cli_rejects_bad_arguments_before_any_work(tmp_path, capsys):
    from neurolm.cli import main

    src = tmp_path / "src"
    src.mkdir()
    store = tmp_path / "store"
    assert main(["ingest", str(tmp_path / "missing"), "--store", str(store)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["ingest", str(src), "--store", str(store), "--workers", "0"]) == 2
    assert "workers must be >= 1" in capsys.readouterr().err
    assert main(["ingest", str(src), "--store", str(store), "--splits", "0.7,0.2,0.2"]) == 2
    assert "sum to 1" in capsys.readouterr().err
    assert main(["ingest", str(src), "--store", str(store), "--dask-address", "localhost:8786"]) == 2
    assert "tcp://" in capsys.readouterr().err
    assert not store.exists()  # nothing was created
    assert main(["inspect", str(store)]) == 2
    assert "no signal store" in capsys.readouterr().err
