"""``neurolm inspect STORE --recordings``: audit a run from one command.

Every recording of the store's current version (its source, the channels kept,
every channel dropped and why, flags, duration, split) and every file of the
catalog that is not a recording (quarantined, skipped, removed) with its reason.
Read from the tables and the commit markers only: no signal is opened.
"""

from __future__ import annotations

from typing import Any

from storage.signal_store import SignalStore


def _split_list(text: Any) -> list[str]:
    return [x for x in str(text).split(",") if x] if isinstance(text, str) else []


def recording_audit(url: str) -> dict[str, Any]:
    """``{"store", "version_id", "recordings": [...], "files": [...]}`` for the current version of ``url``."""
    store = SignalStore.open(url)
    rec, cat = store.read_table("recordings"), store.read_table("catalog")
    recordings = []
    for row in rec.sort_values("recording_id").to_dict("records"):
        rid = row["recording_id"]
        try:
            attrs = store.recording_meta(rid).get("attrs") or {}
        except KeyError:  # a row whose marker is gone (a crash between marker removal and table write)
            attrs = {}
        recordings.append({
            "recording_id": rid, "source_path": row.get("source_path"), "dataset": row.get("dataset"),
            "subject": row.get("subject"), "split": row.get("split"),
            "duration_s": float(row.get("duration_s") or 0.0), "orig_sfreq": float(row.get("orig_sfreq") or 0.0),
            "kept_channels": _split_list(row.get("ch_names")),
            "dropped_channels": [{"label": str(d[0]), "reason": str(d[1])}
                                 for d in attrs.get("dropped_channels") or []],
            "position_mapping": [list(m) for m in attrs.get("position_mapping") or []],
            "flags": _split_list(row.get("flags")),
        })
    files = [{"path": r["path"], "status": r["status"], "reason": r.get("reason")}
             for r in cat.sort_values("path").to_dict("records") if r["status"] != "ingested"] if len(cat) else []
    return {"store": store.url, "version_id": store.version_id, "recordings": recordings, "files": files}


def render_audit_text(audit: dict[str, Any]) -> str:
    """One block per recording, then one line per file that is not a recording."""
    out = [f"store {audit['store']} (version {audit['version_id']}): {len(audit['recordings'])} recordings, "
           f"{len(audit['files'])} other files"]
    for r in audit["recordings"]:
        out.append(f"\n{r['recording_id']}  [{r['split']}]  {r['duration_s']:.1f} s at {r['orig_sfreq']:g} Hz  "
                   f"<- {r['source_path']}")
        out.append(f"  kept ({len(r['kept_channels'])}): {', '.join(r['kept_channels'])}")
        for d in r["dropped_channels"]:
            out.append(f"  dropped {d['label']}: {d['reason']}")
        for label, site, mm in r["position_mapping"]:
            out.append(f"  position {label} -> {site} ({float(mm):.1f} mm)")
        if r["flags"]:
            out.append(f"  flags: {', '.join(r['flags'])}")
    if audit["files"]:
        out.append("\nfiles that are not recordings:")
        out += [f"  {f['status']:<11} {f['path']}: {f['reason'] or ''}" for f in audit["files"]]
    return "\n".join(out)
