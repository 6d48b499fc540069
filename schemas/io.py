"""Validated Parquet IO: every table is checked against its schema at write *and* read.

Why both: the write check stops a stage from publishing a bad table; the read
check catches tables written by an older neurolm or edited by hand. Writes are
atomic (see :func:`storage.fs.atomic_write_bytes`), so a reader never sees half a
Parquet file even while a run rewrites the table.

Errors are :class:`TableValidationError` with a short message that names the
table, the column, the failed check and the offending values, e.g.
``table RECORDINGS: column 'split' failed isin([...]): 'training' (row 3)``.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors

from neurolm.errors import NeurolmError
from storage import fs

_MAX_REPORTED = 5


class TableValidationError(NeurolmError, ValueError):
    """A table does not match its schema. ``table`` and ``failures`` (list of dicts) give details."""

    def __init__(self, message: str, table: str = "", failures: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.table = table
        self.failures = failures or []


def _table_name(schema: pa.DataFrameSchema) -> str:
    return schema.name or "table"


def _py(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _describe(schema: pa.DataFrameSchema, cases: pd.DataFrame, where: str, df: pd.DataFrame) -> TableValidationError:
    name = _table_name(schema)
    parts: list[str] = []
    failures: list[dict[str, Any]] = []
    cases = cases.reset_index(drop=True)
    multi = cases["check"] == "multiple_fields_uniqueness"
    if multi.any():  # one line for a duplicated key tuple, e.g. (recording_id, start)
        cols = list(dict.fromkeys(cases.loc[multi, "column"]))
        rows = sorted({int(r) for r in cases.loc[multi, "index"] if r is not None and not pd.isna(r)})
        keys = list(dict.fromkeys(
            tuple(_py(df.iloc[r][c]) for c in cols) if r < len(df) else None for r in rows))[:3]
        failures.append({"column": cols, "check": "multiple_fields_uniqueness", "values": keys, "rows": rows[:3],
                         "count": len(rows)})
        shown = ", ".join(repr(k[0] if len(cols) == 1 and k else k) for k in keys)
        what = f"column {cols[0]!r} has duplicate values" if len(cols) == 1 else f"duplicate ({', '.join(cols)})"
        parts.append(f"{what}: {shown} (rows {', '.join(map(str, rows[:4]))}{', ...' if len(rows) > 4 else ''})")
        cases = cases[~multi]
    # A column that cannot be converted also fails its dtype and value checks; report it once.
    unconvertible = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype("), "column"])
    # One group per (column, check) so a column with 10,000 bad values is one line.
    for (column, check), grp in cases.groupby(["column", "check"], sort=False, dropna=False):
        if column in unconvertible and not str(check).startswith("coerce_dtype("):
            continue
        vals = [v for v in grp["failure_case"].tolist()][:3]
        rows = [r for r in grp["index"].tolist() if r is not None and not pd.isna(r)][:3]
        failures.append({"column": column, "check": check, "values": vals, "rows": rows, "count": len(grp)})
        if check == "column_in_dataframe":
            parts.append(f"missing column {vals[0]!r}")
            continue
        if str(check).startswith("dtype("):
            want = str(check)[6:-1].strip(chr(39))
            want = "str" if "string" in want else want
            parts.append(f"column {column!r} has the wrong dtype (expected {want}; values like "
                         f"{_py(df[column].dropna().iloc[0]) if column in df and df[column].notna().any() else None!r})")
            continue
        shown = ", ".join(repr(v) for v in vals)
        more = f" and {len(grp) - len(vals)} more" if len(grp) > len(vals) else ""
        rowtxt = f" (rows {', '.join(str(r) for r in rows)})" if rows else ""
        label = "has nulls" if check == "not_nullable" else f"failed {check}"
        if str(check).startswith("coerce_dtype("):
            label = f"cannot be converted to {str(check)[13:-1].strip(chr(39))}"
        if "uniqueness" in str(check) or check == "field_uniqueness":
            label = "has duplicate values"
        parts.append(f"column {column!r} {label}: {shown}{more}{rowtxt}")
    if len(parts) > _MAX_REPORTED:
        parts = parts[:_MAX_REPORTED] + [f"... {len(parts) - _MAX_REPORTED} more problems"]
    msg = f"table {name}{where}: " + "; ".join(parts)
    return TableValidationError(msg, table=name, failures=failures)


def validate(df: pd.DataFrame, schema: pa.DataFrameSchema, where: str = "") -> pd.DataFrame:
    """Validate (and coerce numeric columns); raise TableValidationError with a readable message."""
    if not isinstance(df, pd.DataFrame):
        raise TableValidationError(f"table {_table_name(schema)}{where}: expected a DataFrame, got {type(df).__name__}")
    df = _normalize_strings(df, schema)
    try:
        out = schema.validate(df, lazy=True)
    except SchemaErrors as exc:
        raise _describe(schema, exc.failure_cases, where, df.reset_index(drop=True)) from None
    except SchemaError as exc:  # non-lazy paths (e.g. coercion failures in some pandera versions)
        raise TableValidationError(f"table {_table_name(schema)}{where}: {exc}", table=_table_name(schema)) from None
    # Schema columns first, in schema order; extra columns after, untouched.
    cols = [c for c in schema.columns if c in out.columns] + [c for c in out.columns if c not in schema.columns]
    return out[cols].reset_index(drop=True)


def _normalize_strings(df: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """Object columns that hold only strings and nulls (or nothing) → pandas ``str``.

    Why: frames built from row dicts, empty frames and all-null Parquet columns come
    back as ``object``; their content is valid, only the container differs. Columns
    holding non-strings are left alone so validation names them.
    """
    fix = []
    for name, col in schema.columns.items():
        if name in df.columns and df[name].dtype == object and "str" in str(col.dtype).lower():
            if all(isinstance(v, str) for v in df[name].dropna()):
                fix.append(name)
    return df.astype({c: "str" for c in fix}) if fix else df


def empty_table(schema: pa.DataFrameSchema) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes (valid under the schema)."""
    data: dict[str, pd.Series] = {}
    for name, col in schema.columns.items():
        dt = str(col.dtype)
        if dt.startswith("int"):
            data[name] = pd.Series([], dtype="int64")
        elif dt.startswith("float"):
            data[name] = pd.Series([], dtype="float64")
        elif dt.startswith("bool"):
            data[name] = pd.Series([], dtype="bool")
        else:
            data[name] = pd.Series([], dtype=str)
    return pd.DataFrame(data)


def write_table(df: pd.DataFrame, schema: pa.DataFrameSchema, url: str) -> pd.DataFrame:
    """Validate ``df`` and write it as Parquet at ``url`` atomically; returns the validated frame."""
    out = validate(df, schema, where=" (write)")
    buf = io.BytesIO()
    out.to_parquet(buf, index=False, engine="pyarrow")
    fs.atomic_write_bytes(url, buf.getvalue())
    return out


def read_table(url: str, schema: pa.DataFrameSchema, missing_ok: bool = False) -> pd.DataFrame:
    """Read a Parquet table and validate it. Missing: empty typed frame if ``missing_ok``, else FileNotFoundError."""
    try:
        raw = fs.read_bytes(url)
    except FileNotFoundError:
        if missing_ok:
            return empty_table(schema)
        raise FileNotFoundError(f"table {_table_name(schema)} not found at {url}") from None
    try:
        df = pd.read_parquet(io.BytesIO(raw), engine="pyarrow")
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise TableValidationError(f"table {_table_name(schema)}: unreadable Parquet at {url}: {exc}",
                                   table=_table_name(schema)) from None
    return validate(df, schema, where=f" (read {url})")
