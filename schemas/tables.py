"""The validated tables every stage exchanges (pandera ``DataFrameSchema`` objects).

Why schemas at all: stages talk to each other only through stores and these
tables, written by one engineer's code and read by another's. Validating at every
write *and* read turns a silent contract drift (a renamed column, a ``"training"``
split, a negative offset) into an immediate error that names the table, the column
and the value (see :mod:`schemas.io`).

Conventions:
- Numeric columns coerce (an ``int32`` or integral float offset is fine); string
  columns do not (a number where a name belongs is a bug).
- Schemas are not strict: a stage may add columns of its own; the listed ones are
  required, in any order.
- "comma-joined" columns hold ``",".join(items)``; an empty list is ``""``.
"""

from __future__ import annotations

import pandera.pandas as pa

SPLITS = ("train", "val", "test", "heldout")
LABEL_SPLITS = ("train", "val", "test")
#: ``skipped``: a file under the source that is not a recording to ingest (its reason says why)
CATALOG_STATUSES = ("ingested", "quarantined", "removed", "skipped")


def _str(nullable: bool = False, *checks: pa.Check) -> pa.Column:
    return pa.Column(str, list(checks), nullable=nullable)


def _nonempty_str() -> pa.Column:
    return pa.Column(str, [pa.Check.str_length(min_value=1)], nullable=False)


def _int(*checks: pa.Check) -> pa.Column:
    return pa.Column("int64", list(checks), nullable=False, coerce=True)


def _float(*checks: pa.Check) -> pa.Column:
    return pa.Column("float64", list(checks), nullable=False, coerce=True)


CATALOG = pa.DataFrameSchema(
    {
        "path": _nonempty_str(),
        "format": _str(True),
        "size_bytes": _int(pa.Check.ge(0)),
        "mtime": _float(),
        "content_hash": _str(),
        "dataset": _str(),
        "subject": _str(),
        "session": _str(),
        "status": _str(False, pa.Check.isin(CATALOG_STATUSES)),
        "reason": _str(True),
        "recording_id": _str(True),
        "run_id": _str(),
    },
    name="CATALOG",
    description="One row per discovered source file: where it is, what it is, and what ingestion did with it.",
)

RECORDINGS = pa.DataFrameSchema(
    {
        "recording_id": _nonempty_str(),
        "dataset": _str(),
        "subject": _str(),
        "session": _str(),
        "source_path": _str(),
        "ch_names": _str(),
        "n_channels": _int(pa.Check.gt(0)),
        "duration_s": _float(pa.Check.gt(0)),
        "orig_sfreq": _float(pa.Check.gt(0)),
        "n_samples": _int(pa.Check.ge(0)),
        "flags": _str(),
        "split": _str(False, pa.Check.isin(SPLITS)),
    },
    unique=["recording_id"],
    name="RECORDINGS",
    description="One row per committed recording in a signal-store version.",
)

WINDOWS = pa.DataFrameSchema(
    {
        "recording_id": _nonempty_str(),
        "start": _int(pa.Check.ge(0)),
        "length": _int(pa.Check.gt(0)),
        "split": _str(False, pa.Check.isin(SPLITS)),
    },
    unique=["recording_id", "start"],
    name="WINDOWS",
    description="Sample windows (samples at 200 Hz) of each recording.",
)

LABELS = pa.DataFrameSchema(
    {
        "task": _nonempty_str(),
        "recording_id": _nonempty_str(),
        "subject": _str(),
        "start": _int(pa.Check.ge(0)),
        "length": _int(pa.Check.gt(0)),
        "label": _int(pa.Check.ge(0)),
        "label_name": _str(),
        "split": _str(False, pa.Check.isin(LABEL_SPLITS)),
    },
    name="LABELS",
    description="Downstream-task labels of recording segments.",
)

CORPUS_MANIFEST = pa.DataFrameSchema(
    {
        "shard": _int(pa.Check.ge(0)),
        "sample": _int(pa.Check.ge(0)),
        "recording_id": _nonempty_str(),
        "window_start": _int(pa.Check.ge(0)),
        "n_tokens": _int(pa.Check.gt(0)),
        "split": _str(False, pa.Check.isin(SPLITS)),
        "dataset": _str(),
    },
    unique=["shard", "sample"],
    name="CORPUS_MANIFEST",
    description="One row per tokenized sample of a token corpus.",
)

LABELED_MANIFEST = pa.DataFrameSchema(
    {
        **{k: (_str(False, pa.Check.isin(LABEL_SPLITS)) if k == "split" else v)
           for k, v in CORPUS_MANIFEST.columns.items()},  # a labeled window is train, val or test
        "length": _int(pa.Check.gt(0)),
        "task": _nonempty_str(),
        "label": _int(pa.Check.ge(0)),
        "label_name": _str(),
        "subject": _str(),
    },
    unique=["shard", "sample"],
    name="LABELED_MANIFEST",
    description="One row per tokenized window of a labeled token corpus, with the LABELS row it came from "
                "(task, label, label_name, subject, split; window_start = LABELS start, length in samples).",
)

#: Tables a signal-store version holds, by file stem (``tables/<name>.parquet``).
STORE_TABLES: dict[str, pa.DataFrameSchema] = {
    "catalog": CATALOG,
    "recordings": RECORDINGS,
    "windows": WINDOWS,
    "labels": LABELS,
}

ALL_TABLES: dict[str, pa.DataFrameSchema] = {**STORE_TABLES, "corpus_manifest": CORPUS_MANIFEST,
                                             "labeled_manifest": LABELED_MANIFEST}

RESULT_SOURCES = ("ours: option scoring", "ours: generation", "ours: original's way", "NeuroLM-B (published)")
RESULT_METRICS = ("balanced_accuracy", "pr_auc", "roc_auc", "cohen_kappa", "f1_weighted", "accuracy")

RESULTS = pa.DataFrameSchema(
    {
        "task": pa.Column(str, pa.Check.isin(("tuab", "tuev", "seed", "hmc", "workload", "tusl")), nullable=False),
        "dataset": _nonempty_str(),
        "split": _str(False, pa.Check.isin(LABEL_SPLITS)),
        "source": _str(False, pa.Check.isin(RESULT_SOURCES)),
        "metric": _str(False, pa.Check.isin(RESULT_METRICS)),
        # NaN allowed: a metric sklearn cannot define (AUROC with one class) is reported as missing
        "mean": pa.Column("float64", pa.Check.in_range(-1.0, 1.0, include_min=True, include_max=True,
                                                       ignore_na=True), nullable=True, coerce=True),
        "std": pa.Column("float64", pa.Check.ge(0, ignore_na=True), nullable=True, coerce=True),
        "n": _int(pa.Check.ge(0)),  # 0 on the published row (its n is the paper's)
        "n_models": _int(pa.Check.ge(0)),
        "unparsable": pa.Column("float64", pa.Check.ge(0, ignore_na=True), nullable=True, coerce=True),
        "synthetic": pa.Column(bool, nullable=False, coerce=True),
    },
    unique=["task", "split", "source", "metric"],
    name="RESULTS",
    description="Evaluation results per task, split, source (ours or published) and metric; mean ± std over models.",
)
