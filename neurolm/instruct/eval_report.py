"""Evaluation outputs: JSON, the RESULTS table, paper-shaped tables, figures and a markdown report.

Figures are ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot global state, safe in worker
threads), written as PNG files and embedded in ``report.md`` as ``data:image/png;base64`` URIs so
the Prefect UI shows them inside the artifact (as :mod:`neurolm.lm.report` does for curves).
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any

import numpy as np

from neurolm.instruct.published import published
from neurolm.instruct.tables import markdown_tables, results_frame
from neurolm.instruct.tasks import get_task
from neurolm.lm.report import data_uri


def finite(v: Any) -> Any:
    """``v`` with every non-finite float (a metric sklearn cannot define) as None: strict JSON."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite(x) for x in v]
    return v


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=90)
    FigureCanvasAgg(fig)
    return fig


def confusion_png(row: dict[str, Any]) -> bytes:
    """Two panels: option-scoring and generation confusion matrices (generation has an 'unparsable' column)."""
    task = get_task(row["task"])
    fig = _figure((4.2 + 0.9 * task.n_classes, 2.2 + 0.45 * task.n_classes))
    axes = fig.subplots(1, 2)
    for ax, key, title in ((axes[0], "confusion_options", "option scoring"),
                           (axes[1], "confusion_generation", "generation")):
        m = np.asarray(row[key], dtype=np.float64)
        ax.imshow(m, cmap="Blues")
        cols = list(task.class_names) + (["unparsable"] if m.shape[1] > task.n_classes else [])
        ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(task.n_classes), task.class_names, fontsize=7)
        top = m.max() if m.size else 0
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7, color="white" if v > top / 2 else "black")
        models = row.get("n_models", 1)
        summed = f" (summed over {models} models)" if models > 1 else ""
        ax.set(xlabel="predicted", ylabel="true", title=f"{row['task']} {row['split']}: {title}{summed}")
    return _png(fig)


def bars_png(rows: list[dict[str, Any]], synthetic: bool) -> bytes:
    """Balanced accuracy per task and split: option scoring, generation and (real test data) NeuroLM-B."""
    fig = _figure((max(5.0, 1.2 * len(rows) + 2), 3.4))
    ax = fig.subplots()
    x = np.arange(len(rows))
    series = [("option scoring", [r["balanced_accuracy"] for r in rows], [(r.get("std") or {}).get(
        "balanced_accuracy") for r in rows]),
              ("generation", [r["gen_balanced_accuracy"] for r in rows], [(r.get("std") or {}).get(
                  "gen_balanced_accuracy") for r in rows])]
    if not synthetic:
        pub = [published(r["task"]).get("balanced_accuracy", (math.nan, None)) if r["split"] == "test"
               else (math.nan, None) for r in rows]
        series.append(("NeuroLM-B (published)", [p[0] for p in pub], [p[1] for p in pub]))
    w = 0.8 / len(series)
    for k, (label, vals, errs) in enumerate(series):
        err = [e if e is not None else 0.0 for e in errs]
        ax.bar(x + (k - (len(series) - 1) / 2) * w, vals, w, yerr=err if any(err) else None, label=label, capsize=2)
    ax.set_xticks(x, [f"{r['task']}\n{r['split']}" for r in rows], fontsize=8)
    ax.set(ylim=(0, 1), ylabel="balanced accuracy",
           title="balanced accuracy per task" + (" (synthetic corpus)" if synthetic else ""))
    ax.legend(fontsize=7)
    return _png(fig)


def report_markdown(summary: dict[str, Any], tables_md: str, figures: dict[str, bytes]) -> str:
    lines = ["# Evaluation", "",
             f"- models: {', '.join(f'`{m}`' for m in summary['models'])}",
             f"- corpus: `{summary['corpus']}` version `{summary['corpus_version']}`"
             + (" (**synthetic**)" if summary["synthetic"] else ""),
             f"- metrics: {summary['metrics']} (option scoring = class probabilities from answer log-likelihoods; "
             "generation = greedy 5 tokens, parsed, unparsable counted as wrong)", "", tables_md]
    for name, png in figures.items():
        lines += [f"![{name}]({data_uri(png)})", ""]
    return "\n".join(lines)


def write_outputs(summary: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """Write every output of an evaluation into ``out_dir``; returns the files (and figures as data URIs)."""
    from schemas.io import write_table
    from schemas.tables import RESULTS

    os.makedirs(out_dir, exist_ok=True)
    rows, synthetic = summary["results"], bool(summary["synthetic"])
    files: dict[str, Any] = {}
    frame = write_table(results_frame(rows, synthetic), RESULTS, os.path.join(out_dir, "results.parquet"))
    files["results_table"] = os.path.join(out_dir, "results.parquet")
    tables_md = markdown_tables(rows, synthetic)
    files["tables_md"] = os.path.join(out_dir, "tables.md")
    with open(files["tables_md"], "w", encoding="utf-8") as f:
        f.write(tables_md)
    figures: dict[str, bytes] = {"balanced accuracy per task": bars_png(rows, synthetic)}
    for r in rows:
        figures[f"confusion {r['task']} {r['split']}"] = confusion_png(r)
    files["figures"] = {}
    for name, png in figures.items():
        path = os.path.join(out_dir, name.replace(" ", "-") + ".png")
        with open(path, "wb") as f:
            f.write(png)
        files["figures"][name] = {"path": path, "data_uri": data_uri(png)}
    files["report"] = os.path.join(out_dir, "report.md")
    with open(files["report"], "w", encoding="utf-8") as f:
        f.write(report_markdown(summary, tables_md, figures))
    files["results_json"] = os.path.join(out_dir, "results.json")
    doc = {k: v for k, v in summary.items() if k not in ("files", "outputs")}
    doc["tables"] = json.loads(frame.to_json(orient="records"))
    with open(files["results_json"], "w", encoding="utf-8") as f:
        json.dump(finite(doc), f, indent=1, default=str, allow_nan=False)
    return files
