"""Crafted inputs (issue 11 §5-8, §10): one file never crashes, hangs or escapes a run.

Each hostile file is small on disk (sparse files, compressed zeros); what the
tests check is that the claims are refused before anything is allocated, or
stopped by the per-file bounds, with a reason in words.
"""

from __future__ import annotations

import os
import re
import signal

import pytest

import hostile_files as hf
from neurolm.errors import describe
from neurolm.ingest import discover, make_params, open_store, process_batch
from neurolm.ingest.items import SourceItem
from neurolm.ingest.limits import FileLimits, LimitExceeded, run_bounded
from neurolm.ingest.run import ingest

MIB = 1024**2
#: a test budget far above what a 40 s recording needs (~30 MB) and far below what the claims need
LIMITS = FileLimits(timeout_s=300.0, memory_bytes=512 * MIB)
_TYPE_FIRST = re.compile(r"^\w*(Error|Exception|Warning)\b")


def _item(path, root) -> SourceItem:
    return SourceItem(path=os.fspath(path), recording_id="h-" + re.sub(r"[^a-z0-9]+", "-", os.path.basename(
        os.fspath(path)).lower()).strip("-"), dataset="h", subject="s", root=os.fspath(root))


def _one(tmp_path, path, limits: FileLimits = LIMITS) -> dict:
    store = open_store(str(tmp_path / "store"))
    (row,) = process_batch([_item(path, path.parent)], store.url, store.version_id, run_id="r", limits=limits)
    return row


def _quarantined(row: dict, *words: str) -> str:
    assert row["status"] == "quarantined", row
    reason = row["reason"]
    assert not _TYPE_FIRST.match(reason) and "internal error" not in reason, reason
    for w in words:
        assert w in reason, reason
    return reason


# ----------------------------------------------------------------------------- §5 header claims


def test_edf_signal_count_1e9_is_refused_from_the_file_size(tmp_path):
    row = _one(tmp_path, hf.edf_signal_count(tmp_path / "n.edf"))
    _quarantined(row, "truncated header", "signals need")


@pytest.mark.parametrize("make", [hf.sparse_edf, hf.sparse_vhdr], ids=["edf", "brainvision"])
def test_sparse_recording_is_refused_by_the_memory_budget(tmp_path, make):
    path = make(tmp_path / ("big.edf" if make is hf.sparse_edf else "big.vhdr"))
    row = _one(tmp_path, path)
    _quarantined(row, "too large for the per-file memory budget", "19 channels")


@pytest.mark.parametrize("pnts", [10**10, 2 * hf.SEC * 200])
def test_eeglab_claiming_more_points_than_its_data_file_is_refused(tmp_path, pnts):
    row = _one(tmp_path, hf.eeglab_fdt(tmp_path / "e.set", pnts=pnts))
    _quarantined(row, "truncated: the header claims", f"19 channels x {pnts} samples",
                 f"data file holds {19 * hf.SEC * 200 * 4} bytes")


def test_fif_whose_sizes_lie_is_refused(tmp_path):
    row = _one(tmp_path, hf.fif_lying_sizes(tmp_path / "lie_raw.fif"))
    _quarantined(row, "too large for the per-file memory budget")


def test_memory_error_is_quarantined_not_raised(tmp_path):
    """A .set whose compressed data inflates past the budget: the child's address-space cap stops it."""
    path = hf.eeglab_inflating(tmp_path / "z.set")
    assert path.stat().st_size < 1 * MIB
    row = _one(tmp_path, path, FileLimits(timeout_s=300.0, memory_bytes=64 * MIB))
    _quarantined(row, "memory")


# ----------------------------------------------------------------------------- §6 bounds


@pytest.mark.timeout(60)
def test_named_pipe_is_never_opened(tmp_path):
    pipe = hf.fifo(tmp_path / "src" / "p.edf")
    listing = discover(str(tmp_path / "src"), "h")
    assert [f.rel_path for f in listing] == []
    assert {s.rel_path: s.reason for s in listing.skipped} == {"p.edf": "not a regular file (a named pipe)"}
    _quarantined(_one(tmp_path, pipe), "not a regular file", "named pipe")


@pytest.mark.timeout(60)
def test_link_to_dev_zero_is_never_read(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    os.symlink("/dev/zero", root / "z.edf")
    listing = discover(str(root), "h")
    assert [f.rel_path for f in listing] == []
    assert {s.rel_path: s.reason for s in listing.skipped} == {
        "z.edf": "link to a file outside the source root (not followed)"}
    store = open_store(str(tmp_path / "store"))
    item = _item(root / "z.edf", "/")  # even with a root that contains it: not a regular file
    (row,) = process_batch([item], store.url, store.version_id, limits=LIMITS)
    _quarantined(row, "not a regular file", "character device")


@pytest.mark.timeout(120)
def test_fif_split_naming_itself_is_refused(tmp_path):
    row = _one(tmp_path, hf.fif_self_split(tmp_path / "f"))
    _quarantined(row, "FIF split chain loops", "loop_raw-1.fif")


def test_fif_split_parts_are_read_once_through_the_first_part(tmp_path):
    root = tmp_path / "src"
    first = hf.fif_split(root)
    listing = discover(str(root), "h")
    assert [f.rel_path for f in listing] == ["split_raw-1.fif", "split_raw.fif"]  # discovery lists both
    store = open_store(str(tmp_path / "store"))
    rows = process_batch([f.item for f in listing], store.url, store.version_id, limits=LIMITS)
    by_name = {os.path.basename(r["catalog_row"]["path"]): r for r in rows}
    assert by_name[first.name]["status"] == "ingested"
    assert by_name[first.name]["duration_s"] == pytest.approx(120.0)  # both parts' samples
    _quarantined(by_name["split_raw-1.fif"], "continuation part of a split FIF recording", "split_raw.fif")


def test_rate_above_the_ceiling_is_refused_with_a_reason(tmp_path):
    path = hf.edf_100khz(tmp_path / "fast.edf")
    assert path.stat().st_size < 9 * MIB
    _quarantined(_one(tmp_path, path), "100000 Hz is above the ingest ceiling of 20000 Hz")


def test_time_limit_stops_a_file_and_quarantines_it(tmp_path):
    path = hf.good_edf(tmp_path / "ok.edf")
    assert _one(tmp_path, path)["status"] == "ingested"  # the same file within the bounds
    row = _one(tmp_path / "again", path, FileLimits(timeout_s=0.001, memory_bytes=512 * MIB))
    _quarantined(row, "longer than the per-file time limit of 0.001 s")


def test_bounded_child_reports_crashes_and_memory_errors():
    limits = FileLimits(timeout_s=60.0, memory_bytes=64 * MIB)
    assert run_bounded(lambda: {"x": 1}, limits) == {"x": 1}
    with pytest.raises(LimitExceeded, match="the reader crashed \\(SIGSEGV\\)"):
        run_bounded(lambda: os.kill(os.getpid(), signal.SIGSEGV), limits)
    with pytest.raises(MemoryError):
        run_bounded(lambda: len(bytearray(1024 * MIB)), limits)  # over the cap: refused, not allocated
    with pytest.raises(ValueError, match="boom"):
        run_bounded(lambda: (_ for _ in ()).throw(ValueError("boom")), limits)


# ----------------------------------------------------------------------------- §7 discovery


def test_non_utf8_names_are_skipped_with_a_reason_not_a_crash(tmp_path):
    root = tmp_path / "src"
    hf.good_edf(root / "ok.edf")
    hf.non_utf8(root)
    listing = discover(str(root), "h")
    assert [f.rel_path for f in listing] == ["ok.edf"]
    why = {s.rel_path: s.reason for s in listing.skipped}
    assert why == {"bad\\xff\\xfename.edf": "file name is not valid UTF-8 (cannot be recorded in the catalog): "
                                            "rename it to ingest it",
                   "dir\\xe9": "folder name is not valid UTF-8 (not walked): rename it to ingest its files"}
    summary = ingest(make_params(source=str(root), store=str(tmp_path / "store"), workers=1))
    assert summary["ingested"] == 1 and summary["skipped_files"] == 2


@pytest.mark.timeout(60)
def test_links_to_the_root_are_walked_once(tmp_path):
    root = tmp_path / "src"
    hf.good_edf(root / "s1" / "a.edf")
    os.symlink(".", root / "loop")
    os.symlink(".", root / "loop2")
    os.symlink("..", root / "s1" / "up")
    listing = discover(str(root), "h")
    assert [f.rel_path for f in listing] == ["s1/a.edf"]
    why = {s.rel_path: s.reason for s in listing.skipped}
    assert why == {p: "symbolic link loop (directory already walked)" for p in ("loop", "loop2", "s1/up")}


def test_directory_links_never_leave_the_root(tmp_path):
    root, outside = tmp_path / "src", tmp_path / "elsewhere"
    hf.good_edf(root / "s1" / "a.edf")
    hf.good_edf(outside / "b.edf")
    os.symlink(outside, root / "s2")
    listing = discover(str(root), "h")
    assert [f.rel_path for f in listing] == ["s1/a.edf"]
    assert {s.rel_path: s.reason for s in listing.skipped} == {
        "s2": "link to a directory outside the source root (not followed)"}


def test_long_source_folder_still_gives_valid_ids(tmp_path):
    root = tmp_path / ("long_archive_name_" * 11)[:190]
    hf.good_edf(root / "sub-01" / "ses-01" / "a_recording_with_a_long_name_too.edf")
    summary = ingest(make_params(source=str(root), store=str(tmp_path / "store"), workers=1))
    assert summary["ingested"] == 1 and summary["quarantined"] == 0, summary["quarantine"]
    cat = open_store(str(tmp_path / "store")).read_table("catalog")
    (rid,) = cat["recording_id"]
    assert len(rid) <= 200 and rid.startswith("long_archive_name_long_archive")


# ----------------------------------------------------------------------------- §8 files named by headers


@pytest.mark.parametrize("where", ["../outside/x.eeg", "/dev/zero", "{abs}"])
def test_brainvision_data_file_outside_the_root_is_refused(tmp_path, where):
    root = tmp_path / "src"
    secret = hf.good_vhdr(tmp_path / "outside" / "x.vhdr").with_suffix(".eeg")
    where = where.format(abs=secret)
    vhdr = hf.vhdr_pointing_to(root / "s" / "r.vhdr", where.replace("..", "../..", 1))
    store = open_store(str(tmp_path / "store"))
    (row,) = process_batch([_item(vhdr, root)], store.url, store.version_id, limits=LIMITS)
    _quarantined(row, "outside the source root", "refused")


def test_brainvision_reusing_another_recordings_data_is_refused(tmp_path):
    root = tmp_path / "src"
    hf.good_vhdr(root / "a.vhdr", seed=1)
    vhdr = hf.vhdr_pointing_to(root / "b.vhdr", "a.eeg")
    store = open_store(str(tmp_path / "store"))
    rows = process_batch([_item(root / "a.vhdr", root), _item(vhdr, root)], store.url, store.version_id,
                         limits=LIMITS)
    assert rows[0]["status"] == "ingested"
    _quarantined(rows[1], "belongs to another recording (a.vhdr)")


def test_eeglab_data_file_outside_the_root_is_refused(tmp_path):
    root = tmp_path / "src"
    path = hf.eeglab_fdt(root / "s" / "e.set", dataname="../../outside/e.fdt", fdt=tmp_path / "outside" / "e.fdt")
    store = open_store(str(tmp_path / "store"))
    (row,) = process_batch([_item(path, root)], store.url, store.version_id, limits=LIMITS)
    _quarantined(row, "outside the source root")
    good = hf.eeglab_fdt(root / "s" / "g.set")  # the same construction, data file in place: ingested
    (row,) = process_batch([_item(good, root)], store.url, store.version_id, limits=LIMITS)
    assert row["status"] == "ingested", row["reason"]


# ----------------------------------------------------------------------------- §10 reasons and markdown


@pytest.mark.parametrize("exc, words", [
    (OverflowError("cannot convert float infinity to integer"), "too large to be real"),
    (OSError(22, "Invalid argument"), "out of range"),
    (MemoryError(), "more memory"),
    (ValueError("could not broadcast"), "does not match its format"),
])
def test_exceptions_become_reasons_in_words(exc, words):
    reason = describe(exc)
    assert not _TYPE_FIRST.match(reason) and words in reason
    assert reason.endswith(f"{type(exc).__name__}: {exc}".strip())  # the detail after a colon


def test_markdown_artifacts_escape_labels_from_files():
    from neurolm.datasets.report import render_markdown
    from neurolm.ingest.report import render_run_markdown

    evil_path, evil_reason = "/a|b`c.edf", "channel 'X|<img src=x onerror=alert(1)>' [l](javascript:1) **b**"
    s = {"dataset": "d", "store": "/s", "nothing_to_do": False, "files_seen": 1, "new": 1, "changed": 0,
         "unchanged": 0, "removed": 0, "ingested": 0, "skipped": 0, "quarantined": 1, "recovered": 0,
         "hours_ingested": 0.0, "wall_s": 1.0, "files_per_s": 1, "eeg_hours_per_hour": 0, "mb_per_s": 0,
         "dataset_recordings": 0, "dataset_hours": 0.0, "store_recordings": 0, "version_id": "v",
         "skipped_files": 1, "skipped_reasons": {"odd | reason <b>": 1},
         "quarantine": [{"path": evil_path, "reason": evil_reason}], "channel_coverage": {}}
    md = render_run_markdown(s)
    for line in md.splitlines():
        if evil_path.split("|")[0] in line or "odd" in line:
            assert len(re.findall(r"(?<!\\)\|", line)) == 3, line  # the table's own pipes only
    assert not re.search(r"(?<!\\)<img", md) and "](javascript" not in md and "**b**" not in md
    ds = {"task": "t", "store": "/s", "version_id": "v", "split_mode": "paper", "seed": 0, "protocol": "p",
          "counts": [], "n_recordings": 1, "n_ingested": 0, "n_skipped_unchanged": 0,
          "skips": {"per_file": {evil_path: [evil_reason]}, "n_files_rejected": 0, "n_files_quarantined": 1,
                    "n_events_skipped": 0, "skipped_by_kind": {}}}
    md2 = render_markdown(ds)
    assert not re.search(r"(?<!\\)<img", md2) and "](javascript" not in md2
    (row,) = [ln for ln in md2.splitlines() if "a" in ln and "img" in ln]
    assert len(re.findall(r"(?<!\\)\|", row)) == 3, row


# ----------------------------------------------------------------------------- all of it at once


def test_hostile_tree_ingests_the_good_and_quarantines_the_bad(tmp_path):
    """One source tree holding every hostile case above and a few good files, under a 190-character folder."""
    root, outside = tmp_path / ("hostile_archive_" * 12)[:190], tmp_path / "outside"
    good = [hf.good_edf(root / "good" / "a.edf"), hf.good_vhdr(root / "good" / "b.vhdr", seed=1),
            hf.good_fif(root / "good" / "c_raw.fif", seed=2), hf.eeglab_fdt(root / "good" / "d.set"),
            hf.fif_split(root / "good" / "split")]
    hf.good_vhdr(outside / "x.vhdr", seed=4)
    bad = [hf.edf_signal_count(root / "bad" / "nsig.edf"), hf.sparse_edf(root / "bad" / "sparse.edf"),
           hf.sparse_vhdr(root / "bad" / "sparse.vhdr"), hf.eeglab_fdt(root / "bad" / "claims.set", pnts=1e10),
           hf.fif_lying_sizes(root / "bad" / "lie_raw.fif"), hf.eeglab_inflating(root / "bad" / "zip.set"),
           hf.fif_self_split(root / "bad" / "split"), hf.edf_100khz(root / "bad" / "fast.edf"),
           hf.vhdr_pointing_to(root / "bad" / "up.vhdr", "../../outside/x.eeg"),
           hf.vhdr_pointing_to(root / "bad" / "abs.vhdr", "/dev/zero"),
           hf.vhdr_pointing_to(root / "bad" / "reuse.vhdr", "../good/b.eeg"),
           hf.eeglab_fdt(root / "bad" / "out.set", dataname="../../outside/e.fdt", fdt=outside / "e.fdt"),
           root / "good" / "split" / "split_raw-1.fif"]  # read through split_raw.fif, not on its own
    hf.fifo(root / "bad" / "pipe.edf")
    os.symlink("/dev/zero", root / "bad" / "zero.edf")
    hf.non_utf8(root / "bad")
    os.symlink(".", root / "loop")
    os.symlink(".", root / "loop2")
    os.symlink(outside, root / "elsewhere")
    params = make_params(source=str(root), store=str(tmp_path / "store"), workers=1, file_timeout_s=300,
                         file_memory_gb=0.5)
    summary = ingest(params)
    assert summary["failed"] == []
    cat = open_store(str(tmp_path / "store")).read_table("catalog").set_index("path")
    assert (cat.loc[[str(p) for p in good], "status"] == "ingested").all(), cat.loc[[str(p) for p in good], "reason"]
    for p in bad:
        assert cat.loc[str(p), "status"] == "quarantined", (p, cat.loc[str(p)].to_dict())
        reason = str(cat.loc[str(p), "reason"])
        assert reason and not _TYPE_FIRST.match(reason) and "internal error" not in reason, (p, reason)
    skipped = cat[cat["status"] == "skipped"]
    for name in ("pipe.edf", "zero.edf", "bad\\xff\\xfename.edf", "dir\\xe9", "loop", "loop2", "elsewhere"):
        (reason,) = skipped.loc[[p for p in skipped.index if p.endswith("/" + name)], "reason"]
        assert reason, name
    assert set(cat["status"]) == {"ingested", "quarantined", "skipped"}
    assert summary["ingested"] == len(good) and summary["quarantined"] == len(bad)
