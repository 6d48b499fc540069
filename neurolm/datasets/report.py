"""Label statistics of a store and the text/markdown report of a dataset ingestion.

`label_counts` is what `neurolm inspect` shows for downstream tasks; the
renderers print our per-split sample counts next to the reference's published
ones (NEUROLM_REFERENCE §1.4), then why files and events were skipped, so a
user sees at once whether their copy of a dataset matches the paper's.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from neurolm.markdown import md_code, md_text
from storage.signal_store import SignalStore

MAX_FILES_SHOWN = 30


def label_counts(store: SignalStore | str) -> pd.DataFrame:
    """Windows per task × split × label (columns task, split, label, label_name, n).

    `store` is an open `SignalStore` or a store URL. Empty when the store has no labels.
    """
    if isinstance(store, str):
        store = SignalStore.open(store)
    labels = store.read_table("labels")
    cols = ["task", "split", "label", "label_name", "n"]
    if labels.empty:
        return pd.DataFrame(columns=cols)
    out = labels.groupby(["task", "split", "label", "label_name"]).size().rename("n").reset_index()
    order = {"train": 0, "val": 1, "test": 2}
    out["_o"] = out["split"].map(order)
    return out.sort_values(["task", "_o", "label"]).drop(columns="_o").reset_index(drop=True)[cols]


def _ref(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else "—"


def _lines(s: dict[str, Any]) -> tuple[list[tuple[str, str, str]], list[str]]:
    table = [(c["split"], f"{c['ours']:,}", _ref(c["reference"])) for c in s["counts"]]
    notes = []
    sk = s["skips"]
    notes.append(f"{s['n_recordings']} recordings found, {s['n_ingested']} ingested this run, "
                 f"{s['n_skipped_unchanged']} unchanged; {sk['n_files_rejected']} files rejected by discovery, "
                 f"{sk['n_files_quarantined']} quarantined by the reader; {sk['n_events_skipped']} events skipped.")
    if sk["skipped_by_kind"]:
        notes.append("skipped events: " + "; ".join(f"{k} × {n}" for k, n in sorted(sk["skipped_by_kind"].items())))
    if s.get("tuev_mode"):
        notes.append(f"TUEV mode {s['tuev_mode']}" + (f", {s['tuev_conflicts']} events with conflicting channel "
                                                      "labels resolved" if s["tuev_mode"] == "dedup" else ""))
    if s.get("n_heldout_registered"):
        notes.append(f"{s['n_heldout_registered']} test subjects registered as held out from pretraining.")
    if s.get("protocol"):
        notes.append("split protocol: " + s["protocol"])
    return table, notes


def render_text(s: dict[str, Any]) -> str:
    """Plain-text report of an ingest-dataset summary (the CLI prints this)."""
    table, notes = _lines(s)
    out = [f"{s['task']} → {s['store']} (version {s['version_id']}), split {s['split_mode']} (seed {s['seed']})",
           f"{'split':<8}{'ours':>12}{'reference':>12}"]
    out += [f"{a:<8}{b:>12}{c:>12}" for a, b, c in table]
    out += notes
    files = sorted(s["skips"]["per_file"].items())
    for path, reasons in files[:MAX_FILES_SHOWN]:
        out.append(f"  {path}: {'; '.join(reasons[:3])}{' …' if len(reasons) > 3 else ''}")
    if len(files) > MAX_FILES_SHOWN:
        out.append(f"  … and {len(files) - MAX_FILES_SHOWN} more files (see the catalog table)")
    return "\n".join(out)


def render_markdown(s: dict[str, Any]) -> str:
    """Markdown report (the flow's Prefect artifact)."""
    table, notes = _lines(s)
    md = [f"# {s['task']} ingestion", "", f"Store `{s['store']}` version `{s['version_id']}`, "
          f"split **{s['split_mode']}** (seed {s['seed']}).", "", "| split | ours | reference |", "|---|---:|---:|"]
    md += [f"| {a} | {b} | {c} |" for a, b, c in table]
    md += [""] + [f"- {md_text(n)}" for n in notes]
    files = sorted(s["skips"]["per_file"].items())
    if files:
        md += ["", "| file | reasons |", "|---|---|"]
        md += [f"| {md_code(p)} | {md_text('; '.join(r[:3]))} |" for p, r in files[:MAX_FILES_SHOWN]]
    return "\n".join(md)
