"""Pandera schemas of the tables stages exchange, and validated Parquet IO.

``from schemas import RECORDINGS, write_table, read_table`` is the usual entry point.
"""

from schemas.io import TableValidationError, empty_table, read_table, validate, write_table
from schemas.tables import (
    ALL_TABLES,
    CATALOG,
    CATALOG_STATUSES,
    CORPUS_MANIFEST,
    LABELED_MANIFEST,
    LABEL_SPLITS,
    LABELS,
    RECORDINGS,
    SPLITS,
    STORE_TABLES,
    WINDOWS,
)

__all__ = [
    "ALL_TABLES", "CATALOG", "CATALOG_STATUSES", "CORPUS_MANIFEST", "LABELED_MANIFEST", "LABELS", "LABEL_SPLITS",
    "RECORDINGS", "SPLITS", "STORE_TABLES", "WINDOWS", "TableValidationError", "empty_table",
    "read_table", "validate", "write_table",
]
