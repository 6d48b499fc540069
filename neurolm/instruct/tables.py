"""Paper-shaped result tables: one per dataset and split, ours beside NeuroLM-B's published row.

Rows of a table (columns: the paper's metrics of that dataset, BAcc first, then n and unparsable):

- ``ours: option scoring`` — honest, from class probabilities;
- ``ours: generation`` — the parsed greedy answer, unparsable counted as wrong (AUROC/AUC-PR
  and κ/W-F1 do not apply to it: BAcc only);
- ``ours: original's way`` — with ``--metrics reference``;
- ``NeuroLM-B (published)`` — test split of a real corpus only. A synthetic corpus is marked as
  such and never put next to the paper.

:func:`results_frame` is the same content as the long RESULTS table (``schemas.tables.RESULTS``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from neurolm.instruct.published import LABELS, SOURCE, published
from neurolm.instruct.metrics import metric_names

SOURCES = {"options": "ours: option scoring", "generation": "ours: generation",
           "reference": "ours: original's way", "published": "NeuroLM-B (published)"}


def _columns(kind: str) -> tuple[str, ...]:
    names = metric_names(kind)
    return ("balanced_accuracy", *[m for m in names if m not in ("balanced_accuracy", "accuracy")])


def _kind(row: dict[str, Any]) -> str:
    return "binary" if "roc_auc" in row else "multiclass"


def _values(row: dict[str, Any], source: str) -> dict[str, tuple[float, float | None]]:
    """metric → (mean, std or None) of one source of a result row."""
    std = row.get("std") or {}
    cols = _columns(_kind(row))
    if source == "options":
        return {m: (row[m], std.get(m)) for m in cols}
    if source == "generation":
        return {"balanced_accuracy": (row["gen_balanced_accuracy"], std.get("gen_balanced_accuracy"))}
    if source == "reference":
        return {m: (row[f"ref_{m}"], std.get(f"ref_{m}")) for m in cols if f"ref_{m}" in row}
    return {m: published(row["task"]).get(m, (math.nan, None)) for m in cols}


def row_sources(row: dict[str, Any], synthetic: bool) -> list[str]:
    srcs = ["options", "generation"] + (["reference"] if "ref_balanced_accuracy" in row else [])
    if not synthetic and row["split"] == "test" and published(row["task"]):
        srcs.append("published")
    return srcs


def results_frame(rows: list[dict[str, Any]], synthetic: bool) -> pd.DataFrame:
    """The long RESULTS table: one row per (task, split, source, metric)."""
    recs = []
    for row in rows:
        for src in row_sources(row, synthetic):
            for metric, (mean, std) in _values(row, src).items():
                pub = src == "published"
                recs.append({"task": row["task"], "dataset": row["dataset"], "split": row["split"],
                             "source": SOURCES[src], "metric": metric, "mean": float(mean),
                             "std": None if std is None else float(std),
                             "n": 0 if pub else int(row["n"]), "n_models": 0 if pub else int(row.get("n_models", 1)),
                             "unparsable": None if pub or src == "options" else float(row["unparsable"]),
                             "synthetic": bool(synthetic)})
    return pd.DataFrame(recs)


def _cell(mean: float, std: float | None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None and not math.isnan(std) else "")


def markdown_tables(rows: list[dict[str, Any]], synthetic: bool) -> str:
    """One markdown table per dataset and split (see module doc)."""
    lines: list[str] = []
    if synthetic:
        lines += ["> **Synthetic corpus**: these numbers test the pipeline; they are not comparable with the "
                  "paper, so no published row is shown.", ""]
    for row in rows:
        cols = _columns(_kind(row))
        n_models = row.get("n_models", 1)
        seeds = f", mean ± std over {n_models} models" if n_models > 1 else ""
        lines += [f"### {row['dataset'].upper()} — {row['split']} (n = {row['n']}{seeds})", "",
                  "| | " + " | ".join(LABELS[c] for c in cols) + " | unparsable |",
                  "|---|" + "---|" * (len(cols) + 1)]
        for src in row_sources(row, synthetic):
            vals = _values(row, src)
            cells = [_cell(*vals[c]) if c in vals else "—" for c in cols]
            unp = "—" if src in ("options", "published") else _cell(float(row["unparsable"]),
                                                                       (row.get("std") or {}).get("unparsable"))
            if src not in ("options", "published"):
                unp = unp.replace(".0000", "")
            lines.append(f"| {SOURCES[src]} | " + " | ".join(cells) + f" | {unp} |")
        lines.append("")
    if not synthetic:
        lines += [f"Published row: {SOURCE}. The paper computed AUROC/AUC-PR from hard labels and scored "
                  "unparsable answers as the last class; compare it with the original's-way row.", ""]
    return "\n".join(lines)
