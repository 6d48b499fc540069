"""What an ingestion run did and what a store holds, as dicts (JSON) and text/markdown.

Why dicts first: the same numbers feed the Prefect markdown artifact, the CLI
summary, ``neurolm inspect --json`` and the tests, so they are computed once
and only rendered differently.
"""

from __future__ import annotations

import base64
import collections
from typing import Any

import pandas as pd

from neurolm.markdown import md_code, md_text
from neurolm.datasets.report import label_counts
from storage.heldout import load_heldout
from storage import fs
from storage.signal_store import SignalStore

TOP_CHANNELS = 24


def channel_coverage(recordings: pd.DataFrame) -> dict[str, int]:
    """Number of recordings that contain each vocabulary channel, most common first."""
    counter: collections.Counter[str] = collections.Counter()
    if recordings is not None and not recordings.empty:
        for names in recordings["ch_names"]:
            counter.update(n for n in str(names).split(",") if n)
    return dict(counter.most_common())


def skipped_reasons(reasons) -> dict[str, int]:
    """Files per skip reason, most common first (a big archive has many of the same kind)."""
    return dict(collections.Counter(str(r) for r in reasons).most_common())


def run_summary(state, diff, n_files: int, *, dataset: str, source: str, wall_s: float) -> dict[str, Any]:
    """Summary of one run (``state``: IngestState after finalize, ``diff``: its CatalogDiff)."""
    rec = state.recordings
    this = rec[rec["dataset"] == dataset] if not rec.empty else rec
    c = state.counts
    hours = state.hours_ingested
    return {
        "run_id": state.run_id, "store": state.store.url, "version_id": state.store.version_id,
        "dataset": dataset, "source": source, "files_seen": n_files,
        "new": len(diff.new), "changed": len(diff.changed), "unchanged": len(diff.unchanged_rows),
        "removed": len(diff.removed_rows), "recovered": state.recovered,
        "ingested": c.get("ingested", 0), "skipped": c.get("skipped", 0), "quarantined": c.get("quarantined", 0),
        "quarantine": [{"path": p, "reason": r} for p, r in sorted(state.quarantined)],
        "skipped_files": len(getattr(diff, "skipped_rows", ())),
        "skipped_reasons": skipped_reasons(r["reason"] for r in getattr(diff, "skipped_rows", ())),
        "hours_ingested": round(hours, 4), "wall_s": round(wall_s, 2),
        "files_per_s": round(len(diff.to_ingest) / wall_s, 3) if wall_s > 0 else 0.0,
        "eeg_hours_per_hour": round(hours * 3600 / wall_s, 1) if wall_s > 0 else 0.0,
        "mb_per_s": round(state.bytes_processed / 2**20 / wall_s, 2) if wall_s > 0 else 0.0,
        "dataset_recordings": int(len(this)),
        "dataset_hours": round(float(this["duration_s"].sum()) / 3600, 4) if len(this) else 0.0,
        "store_recordings": int(len(rec)),
        "channel_coverage": dict(list(channel_coverage(this).items())[:TOP_CHANNELS]),
        "nothing_to_do": diff.nothing_to_do,
    }


def render_run_markdown(s: dict[str, Any]) -> str:
    """The Prefect artifact: counts, throughput, quarantine reasons, channel coverage."""
    lines = [f"# Ingestion of {md_code(s['dataset'])} into {md_code(s['store'])}", ""]
    if s["nothing_to_do"]:
        lines += ["**Nothing new**: every file is already in the store (no work done).", ""]
    lines += ["| files seen | new | changed | unchanged | removed | ingested | skipped | quarantined | recovered |",
              "|---|---|---|---|---|---|---|---|---|",
              f"| {s['files_seen']} | {s['new']} | {s['changed']} | {s['unchanged']} | {s['removed']} | "
              f"{s['ingested']} | {s['skipped']} | {s['quarantined']} | {s['recovered']} |", "",
              f"- EEG ingested this run: **{s['hours_ingested']:.3f} h** in {s['wall_s']:.1f} s "
              f"({s['files_per_s']} files/s, {s['eeg_hours_per_hour']} EEG-h per hour, {s['mb_per_s']} MB/s)",
              f"- dataset now: {s['dataset_recordings']} recordings, {s['dataset_hours']:.3f} h; "
              f"store: {s['store_recordings']} recordings; version `{s['version_id']}`", ""]
    if s.get("skipped_files"):
        lines += [f"## Skipped: {s['skipped_files']} files under the source are not recordings to ingest", "",
                  "| reason | files |", "|---|---|"]
        lines += [f"| {md_text(r)} | {n} |" for r, n in s["skipped_reasons"].items()]
        lines.append("")
    if s["quarantine"]:
        lines += ["## Quarantined", "", "| file | reason |", "|---|---|"]
        lines += [f"| {md_code(q['path'])} | {md_text(q['reason'])} |" for q in s["quarantine"]]
        lines.append("")
    if s["channel_coverage"]:
        lines += ["## Channel coverage (recordings per channel)", "",
                  ", ".join(f"{md_text(k)} {v}" for k, v in s["channel_coverage"].items()), ""]
    lines += render_qc_links(s.get("qc_figures") or [], s.get("qc_error"))
    return "\n".join(lines)


#: A figure larger than this is linked by its path instead of embedded (artifacts live in the API's database).
MAX_EMBED_BYTES = 2 * 2**20


def image_markdown(url: str, title: str | None = None) -> str:
    """A PNG as a markdown image with a ``data:`` URI, so the Prefect UI shows it (a browser refuses
    ``file://`` links from a web page, and the file may be on the worker's disk, not the viewer's)."""
    name = title or url.rsplit("/", 1)[-1]
    try:
        data = fs.read_bytes(url)
    except OSError as exc:
        return f"- {md_text(name)}: not readable ({md_text(exc)})"
    if len(data) > MAX_EMBED_BYTES:
        return f"- {md_text(name)} ({len(data) / 2**20:.1f} MB, too large to embed): {md_code(url)}"
    return f"![{md_text(name)}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


def render_qc_links(figures: list[str], error: str | None = None) -> list[str]:
    """Markdown lines showing the store version's QC figures inside the artifact (or saying why there are none)."""
    if not figures and not error:
        return []
    lines = ["## QC figures", ""]
    for u in figures:
        lines += [f"**{md_text(u.rsplit('/', 1)[-1])}** ({md_code(u)})", "", image_markdown(u), ""]
    if error:
        lines.append(f"- QC figures not written (the ingestion itself succeeded): {md_text(error)}")
    return [*lines, ""]


def render_run_text(s: dict[str, Any]) -> str:
    """Short terminal summary of a run."""
    if s["nothing_to_do"]:
        head = f"nothing new: {s['files_seen']} files already in the store (no work done)"
    else:
        head = (f"{s['files_seen']} files: {s['new']} new, {s['changed']} changed, {s['unchanged']} unchanged, "
                f"{s['removed']} removed -> {s['ingested']} ingested, {s['skipped']} already committed, "
                f"{s['quarantined']} quarantined")
    out = [head]
    if s["recovered"]:
        out.append(f"recovered {s['recovered']} recordings committed by an interrupted run")
    out.append(f"{s['hours_ingested']:.3f} h of EEG in {s['wall_s']:.1f} s ({s['eeg_hours_per_hour']} EEG-h/h); "
               f"dataset {s['dataset']}: {s['dataset_recordings']} recordings, {s['dataset_hours']:.3f} h")
    if s.get("skipped_files"):
        out.append(f"{s['skipped_files']} other files skipped: "
                   + "; ".join(f"{r} ({n})" for r, n in s["skipped_reasons"].items()))
    out += [f"  quarantined {q['path']}: {q['reason']}" for q in s["quarantine"]]
    if s.get("qc_figures"):
        out.append(f"QC figures: {s['qc_figures'][0].rsplit('/', 1)[0]}/")
    elif s.get("qc_error"):
        out.append(f"QC figures not written: {s['qc_error']}")
    return "\n".join(out)


def inspect_store(url: str) -> dict[str, Any]:
    """Everything ``neurolm inspect`` shows about a store's current version."""

    store = SignalStore.open(url)
    rec, cat, win = store.read_table("recordings"), store.read_table("catalog"), store.read_table("windows")
    info: dict[str, Any] = {"store": store.url, "version_id": store.version_id,
                            "status": store.version_meta.get("status"), "versions": store.list_versions(),
                            "committed": len(store.committed_ids()), "recordings": int(len(rec)),
                            "hours": round(float(rec["duration_s"].sum()) / 3600, 4) if len(rec) else 0.0,
                            "heldout_subjects": len(load_heldout(store.url))}
    info["datasets"] = {
        ds: {"recordings": int(len(g)), "subjects": int(g["subject"].nunique()),
             "hours": round(float(g["duration_s"].sum()) / 3600, 4)}
        for ds, g in rec.groupby("dataset")} if len(rec) else {}
    info["splits"] = {
        sp: {"recordings": int(len(g)), "subjects": int(g["subject"].nunique()),
             "hours": round(float(g["duration_s"].sum()) / 3600, 4),
             "windows": int((win["split"] == sp).sum()) if len(win) else 0}
        for sp, g in rec.groupby("split")} if len(rec) else {}
    info["channel_coverage"] = channel_coverage(rec)
    info["catalog"] = {k: int(v) for k, v in cat["status"].value_counts().items()} if len(cat) else {}
    q = cat[cat["status"] == "quarantined"] if len(cat) else cat
    info["quarantined"] = [{"path": p, "reason": r} for p, r in zip(q.get("path", []), q.get("reason", []))]
    sk = cat[cat["status"] == "skipped"] if len(cat) else cat
    info["skipped"] = skipped_reasons(sk.get("reason", []))  # counts per reason: an archive may hold 100k of them
    rm = cat[cat["status"] == "removed"] if len(cat) else cat
    info["removed"] = [str(p) for p in rm.get("path", [])]
    try:
        lc = label_counts(store)
        info["labels"] = lc.to_dict("records") if isinstance(lc, pd.DataFrame) else lc
    except Exception as exc:  # a labels table from another release: show the problem, keep the rest
        info["labels"] = {"error": f"{type(exc).__name__}: {exc}"}
    return info


def render_inspect_text(info: dict[str, Any]) -> str:
    """Human-readable ``neurolm inspect`` output."""
    out = [f"store {info['store']}  version {info['version_id']} ({info['status']})",
           f"{info['recordings']} recordings, {info['hours']:.3f} h; {info['committed']} committed signals; "
           f"{info['heldout_subjects']} held-out subjects registered"]
    for ds, d in info["datasets"].items():
        out.append(f"  dataset {ds}: {d['recordings']} recordings, {d['subjects']} subjects, {d['hours']:.3f} h")
    if info["splits"]:
        out.append("splits:")
        for sp, d in info["splits"].items():
            out.append(f"  {sp:8s} {d['recordings']:6d} recordings {d['subjects']:5d} subjects "
                       f"{d['hours']:9.3f} h {d['windows']:7d} windows")
    cov = info["channel_coverage"]
    if cov:
        out.append(f"channels ({len(cov)}): " + ", ".join(f"{k} {v}" for k, v in list(cov.items())[:TOP_CHANNELS])
                   + (" ..." if len(cov) > TOP_CHANNELS else ""))
    if info["catalog"]:
        out.append("catalog: " + ", ".join(f"{k} {v}" for k, v in sorted(info["catalog"].items())))
    for q in info["quarantined"]:
        out.append(f"  quarantined {q['path']}: {q['reason']}")
    for r, n in (info.get("skipped") or {}).items():
        out.append(f"  skipped {n} files: {r}")
    for p in info["removed"]:
        out.append(f"  removed from source (signal kept) {p}")
    labels = info.get("labels")
    if isinstance(labels, list) and labels:
        out.append("labels (windows per task/split/label):")
        out += [f"  {r['task']:10s} {r['split']:6s} {r['label_name']} ({r['label']}): {r['n']}" for r in labels]
    elif isinstance(labels, dict):
        out.append(f"labels: {labels}")
    return "\n".join(out)
