"""How a plan is cut into work items: even batches, byte cap, enough batches for every worker."""

from __future__ import annotations

from neurolm.ingest import SourceFile, SourceItem, make_batches


def _files(sizes: list[int]) -> list[SourceFile]:
    return [SourceFile(item=SourceItem(path=f"/a/{i}.edf", recording_id=f"d-{i}", dataset="d", subject=str(i)),
                       rel_path=f"{i}.edf", size=s, mtime=0.0, format="edf") for i, s in enumerate(sizes)]


def _ids(batches) -> list[list[str]]:
    return [[it.recording_id for it in b] for b in batches]


def test_batches_are_even_consecutive_and_complete():
    files = _files([10] * 10)
    batches = make_batches(files, 8)
    assert [len(b) for b in batches] == [5, 5]
    assert sum(_ids(batches), []) == [f.item.recording_id for f in files]
    assert [len(b) for b in make_batches(_files([10] * 17), 8)] == [6, 6, 5]
    assert [len(b) for b in make_batches(_files([10] * 16), 8)] == [8, 8]
    assert make_batches([], 8) == []


def test_min_batches_spreads_a_small_run_over_the_workers():
    assert [len(b) for b in make_batches(_files([10] * 10), 8, min_batches=4)] == [3, 3, 2, 2]
    assert [len(b) for b in make_batches(_files([10] * 3), 8, min_batches=4)] == [1, 1, 1]
    assert [len(b) for b in make_batches(_files([10] * 40), 8, min_batches=4)] == [8] * 5


def test_byte_cap_splits_a_batch():
    batches = make_batches(_files([60, 60, 60, 10, 10]), 8, max_bytes=100)
    assert _ids(batches) == [["d-0"], ["d-1"], ["d-2", "d-3", "d-4"]]
    assert all(sum(60 if it.recording_id in ("d-0", "d-1", "d-2") else 10 for it in b) <= 100 for b in batches)
