"""`neurolm inspect STORE --recordings [--json]`: a run audited from one command."""

from __future__ import annotations

import json

from neurolm.cli import main
from neurolm.ingest.config import make_params
from neurolm.ingest.discover import recording_id_for
from neurolm.ingest.run import ingest
from neurolm.synth import synth_corpus


def test_inspect_recordings_lists_kept_dropped_and_bad_files(tmp_path, capsys):
    m = synth_corpus(tmp_path / "src", n_recordings=6, minutes=0.4, formats=("edf", "brainvision", "fif"),
                     n_malformed=2, seed=21)
    store = str(tmp_path / "store")
    ingest(make_params(source=str(m.root), store=store, dataset="src"))
    assert main(["inspect", store, "--recordings", "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    by_id = {r["recording_id"]: r for r in audit["recordings"]}
    good = [f for f in m.files if f.malformed is None]
    assert sorted(by_id) == sorted(recording_id_for("src", f.path) for f in good)
    some_dropped = 0
    for f in good:
        r = by_id[recording_id_for("src", f.path)]
        assert r["source_path"].endswith(f.path) and r["split"] in {"train", "val", "test"}
        assert len(r["kept_channels"]) == len(f.eeg_channels)
        # every label of the file is either kept (as a vocabulary name) or dropped with a reason
        dropped = {d["label"] for d in r["dropped_channels"]}
        assert dropped == set(f.ch_names) - set(f.eeg_channels)
        assert all(d["reason"] for d in r["dropped_channels"])
        some_dropped += bool(dropped)
        assert abs(r["duration_s"] - f.duration_s) < 0.05
    assert some_dropped  # the corpus has files with non-EEG channels, so the audit shows real drops
    bad = [f for f in audit["files"] if f["status"] == "quarantined"]
    assert sorted(b["path"].rsplit("/", 1)[-1] for b in bad) == sorted(f.path.rsplit("/", 1)[-1]
                                                                    for f in m.files if f.malformed)
    assert all(b["reason"] for b in bad)

    assert main(["inspect", store, "--recordings"]) == 0
    text = capsys.readouterr().out
    first = good[0]
    assert recording_id_for("src", first.path) in text and "kept (" in text and "quarantined" in text
