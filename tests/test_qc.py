"""QC figures from a real signal store: the statistics behind them and the PNG files."""

from __future__ import annotations

import numpy as np
import pytest

from neurolm.ingest.qc import collect_qc_sample, make_qc_figures, publish_qc_figures
from neurolm.standardize import StandardizeConfig, StandardizedRecording
from neurolm.vocab import index_of
from storage.signal_store import SignalStore

SF = 200.0


def _rec(rng, names, seconds, amp_uv, mains_hz=None) -> StandardizedRecording:
    n = int(seconds * SF)
    t = np.arange(n) / SF
    x = rng.normal(scale=amp_uv, size=(len(names), n))
    if mains_hz:
        x += 5 * amp_uv * np.sin(2 * np.pi * mains_hz * t)
    return StandardizedRecording(
        data=(x / 100.0).astype(np.float32), ch_names=tuple(names),
        ch_indices=tuple(index_of(c) for c in names), orig_sfreq=SF, duration_s=seconds)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two datasets: 'quiet' (10 µV, 50 Hz hum, 3 channels) and 'loud' (100 µV, 5 channels)."""
    url = str(tmp_path_factory.mktemp("qc") / "store")
    st = SignalStore.open(url, create=True, config=StandardizeConfig())
    rng = np.random.default_rng(1)
    for i in range(6):
        st.write_recording(f"quiet-{i}", _rec(rng, ["FP1", "FP2", "CZ"], 20, 10.0, mains_hz=50),
                           {"dataset": "quiet"})
    for i in range(4):
        st.write_recording(f"loud-{i}", _rec(rng, ["FP1", "FP2", "C3", "C4", "O1"], 20, 100.0),
                           {"dataset": "loud"})
    st.write_recording("tiny-0", _rec(rng, ["CZ"], 0.5, 10.0), {"dataset": "tiny"})  # < 1 s: skipped
    return SignalStore.open(url)


def test_statistics(store):
    q = collect_qc_sample(store, max_recordings=6, seconds=8)
    # bounded: 6 // 3 datasets = 2 per dataset, the sub-second one contributes nothing
    assert q.n_recordings == {"quiet": 2, "loud": 2, "tiny": 0}
    assert q.coverage["quiet"] == {index_of("FP1"): 2, index_of("FP2"): 2, index_of("CZ"): 2}
    assert set(q.coverage["loud"]) == {index_of(c) for c in ("FP1", "FP2", "C3", "C4", "O1")}
    assert len(q.rms_uv["quiet"]) == 2 * 3 and len(q.rms_uv["loud"]) == 2 * 5
    # amplitudes come back in µV (model units × 100): loud is ~100 µV, quiet ~10 µV plus hum
    loud = np.median(q.rms_uv["loud"])
    assert 90 < loud < 110
    assert np.median(q.rms_uv["quiet"]) < loud / 2
    # the PSD shows the 50 Hz hum in 'quiet' only
    f = q.freqs
    i50, i60 = np.argmin(abs(f - 50)), np.argmin(abs(f - 60))
    quiet = np.median(np.stack(q.psd["quiet"]), axis=0)
    loud_psd = np.median(np.stack(q.psd["loud"]), axis=0)
    assert quiet[i50] > 100 * quiet[i60]
    assert loud_psd[i50] < 3 * loud_psd[i60]


def test_figures_are_pngs(store, tmp_path):
    paths = make_qc_figures(store, tmp_path / "qc", max_recordings=8, seconds=5)
    assert [p.name for p in paths] == ["qc_channel_coverage.png", "qc_amplitude.png", "qc_psd.png"]
    for p in paths:
        head = p.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000


def test_recordings_table_names_datasets(tmp_path):
    """The recordings table, when written, is the source of dataset names (attrs are a fallback)."""
    import pandas as pd

    url = str(tmp_path / "store")
    st = SignalStore.open(url, create=True, config=StandardizeConfig())
    rng = np.random.default_rng(2)
    st.write_recording("r-0", _rec(rng, ["O1", "O2"], 12, 20.0), {"dataset": "from_attrs"})
    st.write_table("recordings", pd.DataFrame([{
        "recording_id": "r-0", "dataset": "from_table", "subject": "s", "session": "",
        "source_path": "/x.edf", "ch_names": "O1,O2", "n_channels": 2, "duration_s": 12.0,
        "orig_sfreq": 200.0, "n_samples": 2400, "flags": "", "split": "train"}]))
    q = collect_qc_sample(store=SignalStore.open(url))
    assert q.n_recordings == {"from_table": 1}


def test_empty_store_still_draws(tmp_path):
    url = str(tmp_path / "empty")
    SignalStore.open(url, create=True, config=StandardizeConfig())
    paths = make_qc_figures(SignalStore.open(url), tmp_path / "out")
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_published_beside_the_version(store):
    from storage import fs

    urls = publish_qc_figures(store, max_recordings=4, seconds=5)
    assert urls == [fs.join(store.version_url, "qc", n)
                    for n in ("qc_channel_coverage.png", "qc_amplitude.png", "qc_psd.png")]
    assert all(fs.read_bytes(u)[:4] == b"\x89PNG" for u in urls)
    mem = publish_qc_figures(store, "memory://qc-out", max_recordings=2, seconds=2)
    assert all(fs.exists(u) for u in mem) and mem[0].startswith("memory://")
