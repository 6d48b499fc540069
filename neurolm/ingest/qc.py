"""Quality-control figures of a signal store: channel coverage, amplitudes, spectra.

Why: a store of 25,000 h built from a dozen archives fails silently in ways no
per-file check sees — a dataset whose amplitudes are 1000× off (a mV/µV unit
slip, LaBraM#26), a notch at the wrong mains frequency, a montage whose
channels never map to the vocabulary. Three pictures per ingestion run catch
these at a glance; the ingestion report links them from its markdown artifact.

Cost is bounded on purpose: at most ``max_recordings`` recordings (spread evenly
over each dataset, deterministic) and ``seconds`` of signal from the middle of
each, so QC takes seconds on any store size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

from neurolm.vocab import VOCAB
from storage.signal_store import SignalStore
from storage import fs

QC_FIGURES = ("qc_channel_coverage.png", "qc_amplitude.png", "qc_psd.png")  # what publish_qc_figures writes

MAINS_HZ = (50.0, 60.0)


@dataclass
class QCSample:
    """What the figures are drawn from (kept small: a few numbers per recording/channel)."""

    sfreq: float = 200.0
    n_recordings: dict[str, int] = field(default_factory=dict)  # per dataset, sampled
    coverage: dict[str, dict[int, int]] = field(default_factory=dict)  # dataset -> vocab idx -> count
    rms_uv: dict[str, list[float]] = field(default_factory=dict)  # dataset -> per-channel RMS (µV)
    psd: dict[str, list[np.ndarray]] = field(default_factory=dict)  # dataset -> per-recording mean PSD
    freqs: np.ndarray | None = None


def _datasets_of(store: SignalStore, ids: list[str]) -> dict[str, str]:
    """recording_id -> dataset, from the recordings table, else the recording attrs."""
    out: dict[str, str] = {}
    try:
        df = store.read_table("recordings")
        out = dict(zip(df["recording_id"].astype(str), df["dataset"].astype(str)))
    except Exception:  # no table yet (a run still in progress): fall back to attrs
        out = {}
    for rid in ids:
        if rid not in out:
            try:
                out[rid] = str(store.recording_meta(rid).get("attrs", {}).get("dataset", "unknown"))
            except Exception:
                out[rid] = "unknown"
    return out


def _pick(ids_by_ds: dict[str, list[str]], max_recordings: int) -> dict[str, list[str]]:
    """Evenly spaced, deterministic picks; every dataset gets at least one recording."""
    n_ds = max(len(ids_by_ds), 1)
    per = max(1, max_recordings // n_ds)
    out = {}
    for ds, ids in sorted(ids_by_ds.items()):
        ids = sorted(ids)
        if len(ids) > per:
            idx = np.linspace(0, len(ids) - 1, per).round().astype(int)
            ids = [ids[i] for i in idx]
        out[ds] = ids
    return out


def collect_qc_sample(store: SignalStore, *, max_recordings: int = 48, seconds: float = 30.0,
                      unit_divisor: float | None = None) -> QCSample:
    """Read a bounded sample of committed recordings and reduce it to QC statistics."""
    from scipy.signal import welch

    ids = list(store.committed_ids())
    ds_of = _datasets_of(store, ids)
    by_ds: dict[str, list[str]] = {}
    for rid in ids:
        by_ds.setdefault(ds_of.get(rid, "unknown"), []).append(rid)
    if unit_divisor is None:
        unit_divisor = float(getattr(getattr(store, "config", None), "unit_divisor", 100.0) or 100.0)
    q = QCSample()
    for ds, picks in _pick(by_ds, max_recordings).items():
        q.n_recordings[ds] = 0
        cov = q.coverage.setdefault(ds, {})
        for rid in picks:
            meta = store.recording_meta(rid)
            sfreq = float(meta.get("sfreq", 200.0))
            q.sfreq = sfreq
            n = int(meta.get("n_samples", 0))
            want = int(seconds * sfreq)
            start = max(0, (n - want) // 2)
            stop = min(n, start + want)
            if stop - start < int(sfreq):  # under a second: nothing to estimate
                continue
            x = np.asarray(store.read_signal(rid, start, stop), dtype=np.float64) * unit_divisor
            q.n_recordings[ds] += 1
            for ci in meta.get("ch_indices", ()):
                cov[int(ci)] = cov.get(int(ci), 0) + 1
            centered = x - x.mean(axis=1, keepdims=True)
            q.rms_uv.setdefault(ds, []).extend(np.sqrt((centered ** 2).mean(axis=1)).tolist())
            f, pxx = welch(centered, fs=sfreq, nperseg=min(int(2 * sfreq), x.shape[1]), axis=1)
            if q.freqs is None or len(q.freqs) == len(f):
                q.freqs = f
                q.psd.setdefault(ds, []).append(np.median(pxx, axis=0))
    return q


def _coverage_figure(q: QCSample, path: Path) -> Path:
    datasets = sorted(q.coverage)
    used = sorted({i for c in q.coverage.values() for i in c})
    if not used:
        used = [0]
    mat = np.zeros((len(used), max(len(datasets), 1)))
    for j, ds in enumerate(datasets):
        n = max(q.n_recordings.get(ds, 0), 1)
        for i, ci in enumerate(used):
            mat[i, j] = q.coverage[ds].get(ci, 0) / n
    fig = Figure(figsize=(2.0 + 0.9 * len(datasets), 1.5 + 0.18 * len(used)))
    ax = fig.subplots()
    im = ax.imshow(mat, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(used)), [VOCAB[i] for i in used], fontsize=6)
    ax.set_xticks(range(len(datasets)), [f"{d}\n(n={q.n_recordings.get(d, 0)})" for d in datasets],
                  fontsize=7)
    ax.set_title("Channel coverage (fraction of sampled recordings)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _amplitude_figure(q: QCSample, path: Path) -> Path:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    vals = [v for vs in q.rms_uv.values() for v in vs if v > 0]
    lo, hi = (min(vals), max(vals)) if vals else (0.1, 1000.0)
    bins = np.logspace(np.log10(max(lo, 1e-3)) - 0.1, np.log10(max(hi, lo * 10)) + 0.1, 40)
    for ds in sorted(q.rms_uv):
        v = np.asarray([x for x in q.rms_uv[ds] if x > 0])
        if len(v):
            ax.hist(v, bins=bins, histtype="step", label=f"{ds} (median {np.median(v):.1f} µV)")
    ax.set_xscale("log")
    ax.set_xlabel("per-channel RMS (µV)")
    ax.set_ylabel("channels")
    ax.set_title("Amplitude distribution", fontsize=9)
    if q.rms_uv:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _psd_figure(q: QCSample, path: Path) -> Path:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    if q.freqs is not None:
        for ds in sorted(q.psd):
            med = np.median(np.stack(q.psd[ds]), axis=0)
            ax.semilogy(q.freqs, np.maximum(med, 1e-12), label=ds, lw=1)
    for hz in MAINS_HZ:
        if hz < q.sfreq / 2:
            ax.axvline(hz, color="grey", ls="--", lw=0.8)
            ax.text(hz, 1, f" {hz:g} Hz", transform=ax.get_xaxis_transform(), fontsize=7,
                    va="top", color="grey")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("median PSD (µV²/Hz)")
    ax.set_title("Power spectrum per dataset (Welch, median over channels and recordings)", fontsize=9)
    if q.psd:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def make_qc_figures(store: SignalStore, out_dir: str | os.PathLike[str], *, max_recordings: int = 48,
                    seconds: float = 30.0) -> list[Path]:
    """Write qc_channel_coverage.png, qc_amplitude.png and qc_psd.png into ``out_dir``.

    ``store`` is an open ``storage.signal_store.SignalStore`` (any object with
    committed_ids / recording_meta / read_signal / read_table). Returns the PNG
    paths in that order. Figures are drawn even for an empty store (empty axes)
    so a report can always link them.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    q = collect_qc_sample(store, max_recordings=max_recordings, seconds=seconds)
    return [
        _coverage_figure(q, out / QC_FIGURES[0]),
        _amplitude_figure(q, out / QC_FIGURES[1]),
        _psd_figure(q, out / QC_FIGURES[2]),
    ]


def publish_qc_figures(store: SignalStore, dest_url: str | None = None, **kw) -> list[str]:
    """:func:`make_qc_figures`, stored next to the data: ``<version>/qc/*.png`` by default.

    Why beside the version: the figures describe *that* version's signals, so a
    rebuilt version gets its own, and they travel with the store to any fsspec
    location (each PNG is one atomic object write). Returns the URLs written,
    for the run report to link.
    """
    import tempfile


    dest = dest_url or fs.join(store.version_url, "qc")
    with tempfile.TemporaryDirectory(prefix="neurolm-qc-") as tmp:
        out = []
        for p in make_qc_figures(store, tmp, **kw):
            url = fs.join(dest, p.name)
            fs.atomic_write_bytes(url, p.read_bytes())
            out.append(url)
    return out
