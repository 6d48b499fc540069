"""Every file under the source is accounted for: listed, or skipped with why (issue 9 §3.6)."""

from __future__ import annotations

import os

import pytest

from neurolm.ingest import IngestState, discover, open_store, process_batch
from neurolm.ingest.report import inspect_store, render_inspect_text, render_run_text, run_summary
from neurolm.synth import default_ch_names, synth_signal, write_recording

CH = default_ch_names(19)


def _touch(p, data: bytes = b"x" * 100):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "src"
    outside = tmp_path / "outside"
    write_recording(root / "s1" / "a.edf", "edf", synth_signal(19, 256.0, 30, seed=3, ch_names=CH), 256.0, CH)
    for rel in ["s1/a.edf.gz", "s2/c.vhdr", "s2/c.vmrk", "s2/c.eeg", "s2/orphan.eeg", "s3/d.set",
                "s3/d.fdt", "notes.txt", "README", "s4/e.fif.gz", "pack.zip", ".hidden/x.edf", ".DS_Store"]:
        _touch(root / rel)
    _touch(outside / "far.edf")
    os.symlink(root / "nowhere.edf", root / "broken.edf")
    os.symlink(root / "s1", root / "s1" / "loop")  # a directory link back to its parent
    os.symlink(root / "s1" / "a.edf", root / "dup.edf")  # a file already listed under its own path
    os.symlink(outside / "far.edf", root / "far.edf")  # a file outside the root: never read (issue 11 §7)
    os.symlink(root / "self.edf", root / "self.edf")  # a link to itself
    return root


def test_every_file_is_listed_or_skipped_with_a_reason(tree):
    files = discover(str(tree), "d")
    listed = [f.rel_path for f in files]
    assert listed == ["s1/a.edf", "s2/c.vhdr", "s3/d.set", "s4/e.fif.gz"]
    assert {f.rel_path: f.format for f in files}["s4/e.fif.gz"] == "fif"
    why = {s.rel_path: s.reason for s in files.skipped}
    assert why["s1/a.edf.gz"].startswith("compressed EDF recording (.gz)")
    assert why["pack.zip"].startswith("compressed file (.zip)")
    assert why["s2/c.vmrk"] == why["s2/c.eeg"] == "sidecar of another recording (read through its .vhdr)"
    assert why["s3/d.fdt"] == "sidecar of another recording (read through its .set)"
    assert why["s2/orphan.eeg"] == ".eeg sidecar without its .vhdr header file"
    assert why["notes.txt"] == "unknown extension .txt" and why["README"] == "unknown extension (none)"
    assert why["broken.edf"] == "broken symbolic link" and why["self.edf"] == "symbolic link loop"
    assert why["s1/loop"].startswith("symbolic link loop")
    assert why["dup.edf"].startswith("link to a file under the source root")
    assert why["far.edf"] == "link to a file outside the source root (not followed)"
    assert why[".hidden"] == "hidden directory (not walked)" and why[".DS_Store"] == "hidden file"
    # accounted for: every directory entry that is not a listed recording or a walked directory
    walked = set(listed) | set(why)
    for dirpath, dirnames, names in os.walk(tree):
        rel_dir = os.path.relpath(dirpath, tree)
        if rel_dir.startswith(".hidden"):
            continue
        for n in names + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            assert os.path.normpath(os.path.join(rel_dir, n)) in walked


def test_skipped_files_reach_catalog_summary_and_inspect(tree, tmp_path):
    store = open_store(str(tmp_path / "store"))
    files = discover(str(tree), "d")
    st = IngestState.load(store, "r1")
    diff = st.plan(files, "d")
    st.add(process_batch([f.item for f in diff.to_ingest], store.url, store.version_id, run_id="r1"))
    st.finalize()
    cat = store.read_table("catalog")
    assert len(cat) == len(files) + len(files.skipped)
    assert cat.loc[cat["path"] == str(tree / "s1" / "a.edf"), "status"].tolist() == ["ingested"]
    sk = cat[cat["status"] == "skipped"]
    assert dict(zip(sk["path"].map(os.path.basename), sk["reason"]))["notes.txt"] == "unknown extension .txt"
    summary = run_summary(st, diff, len(files), dataset="d", source=str(tree), wall_s=1.0)
    assert summary["skipped_files"] == len(files.skipped)
    assert summary["skipped_reasons"]["sidecar of another recording (read through its .vhdr)"] == 2
    assert "other files skipped" in render_run_text(summary)
    info = inspect_store(store.url)
    assert info["catalog"]["skipped"] == len(files.skipped)
    assert info["skipped"]["broken symbolic link"] == 1
    assert "skipped 1 files: broken symbolic link" in render_inspect_text(info)
    # a second run over the same tree: the skipped rows stay, nothing is dirty or re-ingested
    st2 = IngestState.load(store, "r2")
    d2 = st2.plan(discover(str(tree), "d"), "d")
    assert d2.nothing_to_do and not st2._dirty
    # a skipped file that vanishes loses its row; a recording that becomes a broken link is removed
    (tree / "notes.txt").unlink()
    (tree / "s1" / "a.edf").unlink()
    os.symlink(tree / "gone.edf", tree / "s1" / "a.edf")
    d3 = st2.plan(discover(str(tree), "d"), "d")
    cat3 = st2.catalog.set_index(st2.catalog["path"].map(lambda p: os.path.relpath(p, tree)))
    assert "notes.txt" not in cat3.index
    assert cat3.loc["s1/a.edf", "status"] == "removed" and "broken symbolic link" in cat3.loc["s1/a.edf", "reason"]
    assert [r["path"] for r in d3.removed_rows] == [str(tree / "s1" / "a.edf")]


def test_fif_gz_is_ingested(tmp_path):
    import mne
    import numpy as np

    root = tmp_path / "src"
    root.mkdir()
    x = synth_signal(3, 250.0, 30, seed=1, ch_names=["Fz", "Cz", "Pz"]).astype(np.float64) * 1e-6
    mne.io.RawArray(x, mne.create_info(["Fz", "Cz", "Pz"], 250.0, "eeg"), verbose="error").save(
        root / "rec_raw.fif.gz", verbose="error")
    write_recording(root / "b.edf", "edf", synth_signal(19, 256.0, 30, seed=2, ch_names=CH), 256.0, CH)
    files = discover(str(root), "z")
    assert [f.rel_path for f in files] == ["b.edf", "rec_raw.fif.gz"] and files.skipped == []
    store = open_store(str(tmp_path / "store"))
    rows = process_batch([f.item for f in files], store.url, store.version_id)
    assert [r["status"] for r in rows] == ["ingested", "ingested"]
