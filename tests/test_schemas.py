"""Table schemas: valid tables round-trip through Parquet; each kind of violation is named clearly."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from schemas import (
    ALL_TABLES, CATALOG, CORPUS_MANIFEST, LABELED_MANIFEST, LABELS, RECORDINGS, WINDOWS, TableValidationError, empty_table,
    read_table, validate, write_table,
)
from storage import fs


def valid(name: str) -> pd.DataFrame:
    if name == "catalog":
        return pd.DataFrame({
            "path": ["/d/a.edf", "/d/b.edf", "/d/c.edf"], "format": ["edf", None, "bdf"],
            "size_bytes": [100, 0, 5], "mtime": [1.5, 2.0, 3.0], "content_hash": ["h1", "h2", "h3"],
            "dataset": "d", "subject": ["1", "2", "3"], "session": "", "status": ["ingested", "quarantined", "removed"],
            "reason": [None, "truncated EDF header", None], "recording_id": ["d:a", None, None], "run_id": "run-1",
        })
    if name == "recordings":
        return pd.DataFrame({
            "recording_id": ["d:a", "d:b"], "dataset": "d", "subject": ["1", "2"], "session": "",
            "source_path": ["/d/a.edf", "/d/b.edf"], "ch_names": ["FP1,FP2", "C3"], "n_channels": [2, 1],
            "duration_s": [30.0, 12.5], "orig_sfreq": [256.0, 500.0], "n_samples": [6000, 2500],
            "flags": ["", "flat:C3"], "split": ["train", "heldout"],
        })
    if name == "windows":
        return pd.DataFrame({"recording_id": ["d:a", "d:a", "d:b"], "start": [0, 10600, 0],
                             "length": [10600, 10600, 2000], "split": ["train", "train", "val"]})
    if name == "labels":
        return pd.DataFrame({"task": "tuab", "recording_id": ["d:a", "d:a"], "subject": "1", "start": [0, 2000],
                             "length": 2000, "label": [0, 1], "label_name": ["normal", "abnormal"],
                             "split": ["train", "test"]})
    manifest = pd.DataFrame({"shard": [0, 0, 1], "sample": [0, 1, 0], "recording_id": ["d:a", "d:a", "d:b"],
                             "window_start": [0, 10600, 0], "n_tokens": [1007, 1007, 500],
                             "split": ["train", "train", "val"], "dataset": "d"})
    if name == "labeled_manifest":
        return manifest.assign(n_tokens=[230, 230, 120], length=[2000, 2000, 6000], task=["TUAB", "TUAB", "HMC"],
                               label=[0, 1, 4], label_name=["normal", "abnormal", "REM"], subject=["1", "1", "2"])
    return manifest


@pytest.mark.parametrize("name", sorted(ALL_TABLES))
@pytest.mark.parametrize("where", ["local", "memory"])
def test_valid_tables_roundtrip(name, where, tmp_path):
    schema = ALL_TABLES[name]
    url = str(tmp_path / f"{name}.parquet") if where == "local" else f"memory://schemas-{uuid.uuid4().hex[:8]}/{name}.parquet"
    df = valid(name)
    written = write_table(df, schema, url)
    back = read_table(url, schema)
    pd.testing.assert_frame_equal(back, written)
    assert list(back.columns) == list(schema.columns) and len(back) == len(df)
    e = empty_table(schema)
    assert len(validate(e, schema)) == 0 and list(e.columns) == list(schema.columns)
    # extra columns are allowed and kept after the schema's own
    extra = write_table(df.assign(note="x"), schema, url)
    assert list(extra.columns)[-1] == "note" and read_table(url, schema)["note"].tolist() == ["x"] * len(df)


def test_numeric_columns_coerce():
    df = valid("windows").astype({"start": "int32", "length": "float64"})
    out = validate(df, WINDOWS)
    assert str(out["start"].dtype) == "int64" and str(out["length"].dtype) == "int64"


VIOLATIONS = [
    # (schema, table name, mutation, expected message fragments)
    (CATALOG, "catalog", lambda d: d.assign(status=["ingested", "lost", "removed"]),
     ["table CATALOG", "'status'", "'lost'", "row"]),
    (CATALOG, "catalog", lambda d: d.assign(size_bytes=[1, -5, 2]), ["table CATALOG", "'size_bytes'", "-5"]),
    (CATALOG, "catalog", lambda d: d.assign(path=["/d/a.edf", None, "/x"]), ["table CATALOG", "'path'", "nulls"]),
    (RECORDINGS, "recordings", lambda d: d.assign(recording_id=["d:a", "d:a"]),
     ["table RECORDINGS", "'recording_id'", "duplicate", "'d:a'"]),
    (RECORDINGS, "recordings", lambda d: d.assign(split=["train", "training"]),
     ["table RECORDINGS", "'split'", "'training'"]),
    (RECORDINGS, "recordings", lambda d: d.assign(n_channels=[2, 0]), ["'n_channels'", "greater_than(0)", "0"]),
    (RECORDINGS, "recordings", lambda d: d.assign(duration_s=[30.0, -1.0]), ["'duration_s'", "-1.0"]),
    (RECORDINGS, "recordings", lambda d: d.drop(columns=["orig_sfreq"]), ["table RECORDINGS", "missing column 'orig_sfreq'"]),
    (RECORDINGS, "recordings", lambda d: d.assign(n_samples=["many", "few"]),
     ["'n_samples'", "cannot be converted to int64", "'many'"]),
    (WINDOWS, "windows", lambda d: d.assign(start=[0, 0, 0]), ["table WINDOWS", "duplicate"]),
    (WINDOWS, "windows", lambda d: d.assign(start=[-1, 10600, 0]), ["table WINDOWS", "'start'", "-1"]),
    (WINDOWS, "windows", lambda d: d.assign(length=[0, 10600, 2000]), ["'length'", "0"]),
    (LABELS, "labels", lambda d: d.assign(split=["train", "heldout"]), ["table LABELS", "'split'", "'heldout'"]),
    (LABELS, "labels", lambda d: d.assign(label=[0, -3]), ["table LABELS", "'label'", "-3"]),
    (CORPUS_MANIFEST, "corpus_manifest", lambda d: d.assign(sample=[0, 0, 0], shard=[0, 0, 1]),
     ["table CORPUS_MANIFEST", "duplicate"]),
    (CORPUS_MANIFEST, "corpus_manifest", lambda d: d.assign(n_tokens=[1007, 0, 5]), ["'n_tokens'", "0"]),
    (LABELED_MANIFEST, "labeled_manifest", lambda d: d.assign(split=["train", "heldout", "test"]),
     ["table LABELED_MANIFEST", "'split'", "'heldout'"]),
    (LABELED_MANIFEST, "labeled_manifest", lambda d: d.drop(columns=["label"]),
     ["table LABELED_MANIFEST", "missing column 'label'"]),
    (LABELED_MANIFEST, "labeled_manifest", lambda d: d.assign(task=["TUAB", "", "HMC"]), ["'task'", "str_length"]),
]


@pytest.mark.parametrize("schema,name,mutate,fragments", VIOLATIONS)
def test_violations_are_rejected_with_clear_messages(schema, name, mutate, fragments, tmp_path):
    bad = mutate(valid(name))
    url = str(tmp_path / "t.parquet")
    with pytest.raises(TableValidationError) as ei:
        write_table(bad, schema, url)
    msg = str(ei.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    assert "\n" not in msg and len(msg) < 600 and ei.value.table == schema.name
    assert not fs.exists(url)  # nothing written


def test_read_validates_and_missing(tmp_path):
    url = str(tmp_path / "windows.parquet")
    valid("windows").assign(split="bogus").to_parquet(url)  # written behind the schema's back
    with pytest.raises(TableValidationError, match=r"table WINDOWS \(read .*\): column 'split'.*'bogus'"):
        read_table(url, WINDOWS)
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(FileNotFoundError, match="table LABELS not found"):
        read_table(missing, LABELS)
    e = read_table(missing, LABELS, missing_ok=True)
    assert len(e) == 0 and list(e.columns) == list(LABELS.columns)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(TableValidationError, match="unreadable Parquet"):
        read_table(str(tmp_path / "junk.parquet"), WINDOWS)
    with pytest.raises(TableValidationError, match="expected a DataFrame"):
        write_table([1, 2], WINDOWS, url)


def test_object_string_columns_are_normalised_but_numbers_are_not_names(tmp_path):
    # Frames built from row dicts / with all-null columns arrive as object dtype: still valid.
    empty = pd.DataFrame(columns=list(CATALOG.columns))
    out = validate(empty, CATALOG)
    assert len(out) == 0 and str(out["path"].dtype) == "str" and str(out["size_bytes"].dtype) == "int64"
    d = valid("catalog").assign(reason=pd.Series([None, None, None], dtype=object))
    url = str(tmp_path / "c.parquet")
    write_table(d, CATALOG, url)
    back = read_table(url, CATALOG)
    assert back["reason"].isna().all() and str(back["reason"].dtype) == "str"
    with pytest.raises(TableValidationError, match=r"column 'subject' has the wrong dtype \(expected str; values like 1\)"):
        validate(valid("catalog").assign(subject=pd.Series([1, 2, 3], dtype=object)), CATALOG)
