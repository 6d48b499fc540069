"""End to end: `neurolm ingest-dataset` on a synthetic TUAB layout with bad inputs.

Real Prefect (shared local server), real Dask (one worker process), real Zarr
store. Checks the recordings, the LABELS table, per-file quarantine reasons,
the held-out registration of the official eval subjects (so pretraining never
sees them) and an incremental rerun through the CLI that does no work.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from neurolm.datasets.synth import synth_dataset


def expected_split(f, seed=0):
    """Official eval folder -> test; else u = sha256("seed:tuab:<id>"), train below 0.8, val above."""
    if f["official"] == "eval":
        return "test"
    subject = f["subject_key"].split(":", 1)[1]
    u = int.from_bytes(hashlib.sha256(f"{seed}:tuab:{subject}".encode()).digest()[:8], "big") / 2.0**64
    return "train" if u < 0.8 else "val"


@pytest.mark.slow
def test_tuab_end_to_end(tmp_path, capsys):
    from flows.runtime import prefect_server

    with prefect_server():  # one local API server for both runs (each would otherwise start its own)
        _end_to_end(tmp_path, capsys)


def _end_to_end(tmp_path, capsys):
    from flows.ingest_dataset import run_ingest_dataset
    from neurolm.cli import main
    from neurolm.datasets.ingest import make_dataset_params
    from neurolm.datasets.report import label_counts
    from storage.heldout import load_heldout
    from storage.signal_store import SignalStore

    m = synth_dataset("tuab", tmp_path / "src", seed=2, bad=True)
    store_url = str(tmp_path / "store")
    params = make_dataset_params(dataset="tuab", root=m["root"], store=store_url, workers=1, batch_size=8,
                                 split="seeded")  # subject-wise hash (the default is the paper's protocol)
    summary = run_ingest_dataset(params)

    store = SignalStore.open(store_url)
    labels = store.read_table("labels")
    good = {f["path"]: f for f in m["files"]}
    per_file = labels.groupby("source").size().to_dict()
    assert per_file == {p: f["seconds"] // 10 for p, f in good.items()}
    for src, grp in labels.groupby("source"):
        assert set(grp["split"]) == {expected_split(good[src])}
        assert set(grp["label"]) == {good[src]["label"]} and set(grp["task"]) == {"TUAB"}
    assert summary["n_labels"] == len(labels) == sum(f["seconds"] // 10 for f in good.values())

    # Stored signals: 23 channels in NeuroLM's order, as long as the source at 200 Hz.
    rec = store.read_table("recordings").set_index("recording_id")
    for rid in labels["recording_id"].unique():
        assert rec.loc[rid, "ch_names"].split(",")[:4] == ["FP1", "FP2", "F3", "F4"]
        assert rec.loc[rid, "n_channels"] == 23
    catalog = store.read_table("catalog")
    bad = {b["path"]: b for b in m["bad"]}
    q = catalog[catalog["status"] == "quarantined"]
    assert len(q) == len(bad)
    for path, reason in zip(q["path"], q["reason"]):
        case = next(b for p, b in bad.items() if path.endswith(p))
        assert ("renamed" in reason) if case["stage"] == "discover" else ("T1" in reason or "channel" in reason)

    # Held out: the eval subjects are registered and produce no pretraining windows.
    eval_keys = {f["subject_key"] for f in good.values() if f["official"] == "eval"}
    assert eval_keys <= load_heldout(store_url)
    held_ids = set(rec.index[rec["split"] == "heldout"])
    assert held_ids == set(labels.loc[labels["split"] == "test", "recording_id"])
    windows = store.read_table("windows")
    long_ids = set(rec.index[rec["duration_s"] >= 54])  # 44-s windows + the 10-s end crop
    assert long_ids & held_ids and long_ids - held_ids  # one 60-s recording on each side
    assert set(windows["recording_id"]) == long_ids - held_ids

    counts = label_counts(store)
    assert int(counts["n"].sum()) == len(labels)
    assert set(counts["task"]) == {"TUAB"}

    # Incremental rerun through the CLI: nothing re-ingested, same labels.
    before = store.content_hash()
    code = main(["ingest-dataset", "tuab", m["root"], "--store", store_url, "--workers", "1", "--split", "seeded",
                 "--json"])
    assert code == 0
    text = capsys.readouterr().out
    rerun = json.loads(text[text.index("{"):])
    assert rerun["n_ingested"] == 0 and rerun["n_skipped_unchanged"] == len(good) + 1
    assert rerun["counts"][0] == {"split": "train", "ours": int((labels["split"] == "train").sum()),
                                  "reference": 297103}
    again = SignalStore.open(store_url)
    assert again.read_table("labels").equals(labels)
    assert again.content_hash() == before
