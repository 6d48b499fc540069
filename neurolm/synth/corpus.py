"""`synth_corpus`: a whole synthetic archive (all formats, malformed files, layouts).

Why: every stage (discovery, ingestion, QC, tokenizer, demo) needs realistic
input without real patient data. A corpus mixes formats, sampling rates
(250/256/500/512 Hz), montages of 19-64 channels including non-EEG channels
(ECG/EOG/PHOTIC/EMG) that ingestion must drop, TUH-style and plain labels,
occasional mixed-rate EDFs, several subjects and sessions, and malformed
files. The returned `SynthManifest` (also saved as `synth_manifest.json`) is
the ground truth tests compare against.

Layouts (folder structure only; signals are the same):
- "flat": `<root>/<subject>/<session>/<subject>_<session>_r<k><ext>` (a generic tree).
- "tuh": `<root>/<subject>/s001_2012/01_tcp_ar/<subject>_s001_t000.edf` (EDF only,
  TUH labels "EEG FP1-REF", 8-letter subject ids).
- "bids": a BIDS tree written with mne-bids (sub-XX/ses-YY/eeg/..., participants.tsv);
  FIF/GDF/CNT recordings are stored as EDF there (BIDS EEG allows EDF/BDF/BrainVision/EEGLAB).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from neurolm.errors import ConfigError
from neurolm.synth.malformed import MALFORMED_KINDS, SPECS, write_malformed
from neurolm.synth.signal import NON_EEG, default_ch_names, synth_signal
from neurolm.synth.writers import EXTENSION, WRITABLE_FORMATS, write_recording
from neurolm.synth.bids import write_bids

LAYOUTS = ("flat", "tuh", "bids")
#: Formats of a default corpus (CNT is writable but opt-in, as in the brief).
DEFAULT_FORMATS = ("edf", "bdf", "gdf", "fif", "brainvision", "eeglab")
SFREQS = (250.0, 256.0, 500.0, 512.0)
N_EEG = (19, 19, 21, 23, 23, 32, 60)  # montage sizes drawn per recording
_TUH_NON_EEG = {"ECG": "EEG EKG1-REF", "EOG": "EOG-REF", "PHOTIC": "PHOTIC-REF", "EMG": "EMG-REF"}


@dataclass(frozen=True)
class SynthFile:
    """One written file. `path` is relative to the manifest root."""

    path: str
    format: str | None  # None for unknown_format files
    subject: str
    session: str
    ch_names: tuple[str, ...]  # raw labels as written
    eeg_channels: tuple[str, ...]  # the labels that are EEG (what ingestion should keep)
    sfreq: float  # highest channel rate
    duration_s: float
    mixed_sfreq: bool = False
    malformed: str | None = None  # one of MALFORMED_KINDS
    stage: str | None = None  # who must reject it (see malformed.MalformedSpec)
    reason: str | None = None  # substring of the expected rejection reason


@dataclass(frozen=True)
class SynthManifest:
    root: str
    layout: str
    seed: int
    mains_hz: float
    files: tuple[SynthFile, ...]

    @property
    def good(self) -> tuple[SynthFile, ...]:
        return tuple(f for f in self.files if f.malformed is None)

    @property
    def malformed(self) -> tuple[SynthFile, ...]:
        return tuple(f for f in self.files if f.malformed is not None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> SynthManifest:
        d = json.loads(text)
        files = tuple(
            SynthFile(**{**f, "ch_names": tuple(f["ch_names"]), "eeg_channels": tuple(f["eeg_channels"])})
            for f in d.pop("files")
        )
        return cls(files=files, **d)


def _tuh_id(k: int) -> str:
    letters = "".join(chr(ord("a") + (k // 26**i) % 26) for i in range(3))[::-1]
    return "aaaaa" + letters


def _labels(n_eeg: int, n_non: int, tuh: bool, rng: np.random.Generator) -> tuple[tuple[str, ...], tuple[str, ...]]:
    base = default_ch_names(n_eeg + n_non, n_non)
    eeg, non = base[:n_eeg], base[n_eeg:]
    if tuh:
        return tuple(f"EEG {n}-REF" for n in eeg) + tuple(_TUH_NON_EEG[k] for k in non), tuple(f"EEG {n}-REF" for n in eeg)
    if rng.random() < 0.5:  # manufacturer spelling: Fp1, Cz
        eeg = tuple(n[0] + n[1:].lower() if len(n) > 1 else n for n in eeg)
    return eeg + non, eeg


def _check_args(n_recordings: int, formats: tuple[str, ...], minutes: float, n_malformed: int, layout: str) -> None:
    if n_recordings < 1:
        raise ConfigError(f"n_recordings must be >= 1, got {n_recordings}")
    if not formats or any(f not in WRITABLE_FORMATS for f in formats):
        raise ConfigError(f"formats must be a non-empty subset of {', '.join(WRITABLE_FORMATS)}; got {formats}")
    if not minutes > 0:
        raise ConfigError(f"minutes must be > 0, got {minutes}")
    if n_malformed < 0:
        raise ConfigError(f"n_malformed must be >= 0, got {n_malformed}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def synth_corpus(
    out_dir: str | os.PathLike,
    n_recordings: int = 24,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    minutes: float = 1.0,
    n_malformed: int = 5,
    seed: int = 0,
    mains_hz: float = 60.0,
    layout: str = "flat",
) -> SynthManifest:
    """Write `n_recordings` good files plus `n_malformed` broken ones under `out_dir`.

    Deterministic by `seed` (same files, same bytes except FIF/EEGLAB
    container timestamps). Durations vary ±40 % around `minutes`.
    """
    formats = tuple(formats)
    _check_args(n_recordings, formats, minutes, n_malformed, layout)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_subjects = max(1, (n_recordings + 1) // 2)
    files: list[SynthFile] = []
    bids_items = []
    for k in range(n_recordings):
        fmt = "edf" if layout == "tuh" else formats[k % len(formats)]
        subj_i, sess_i = k % n_subjects, k // n_subjects
        subject = _tuh_id(subj_i) if layout == "tuh" else f"{subj_i + 1:02d}"
        session = f"s{sess_i + 1:03d}" if layout == "tuh" else f"{sess_i + 1:02d}"
        sfreq = float(rng.choice(SFREQS))
        n_eeg, n_non = int(rng.choice(N_EEG)), int(rng.integers(0, len(NON_EEG) + 1))
        labels, eeg = _labels(n_eeg, n_non, tuh=fmt in ("edf", "bdf") and (layout == "tuh" or rng.random() < 0.6), rng=rng)
        seconds = max(1.0, round(minutes * 60 * float(rng.uniform(0.6, 1.4))))
        data = synth_signal(len(labels), sfreq, seconds, seed * 100_003 + k, ch_names=labels, mains_hz=mains_hz)
        date = datetime(2012, 1, 1) + timedelta(days=int(rng.integers(0, 3000)), seconds=int(rng.integers(0, 86400)))
        rates = None
        if fmt in ("edf", "bdf") and n_non and rng.random() < 0.3 and layout != "bids":  # slower non-EEG channels
            rates = [sfreq] * n_eeg + [sfreq / 2] * n_non
        if layout == "bids":
            bids_items.append((subject, session, k, fmt, data, sfreq, labels, date))
            rel = None
        else:
            if layout == "tuh":
                rel = f"{subject}/{session}_{date.year}/01_tcp_ar/{subject}_{session}_t000.edf"
            else:
                rel = f"{subject}/{session}/{subject}_{session}_r{k:03d}{EXTENSION[fmt]}"
            write_recording(root / rel, fmt, data, sfreq, labels, meas_date=date, mains_hz=mains_hz, ch_sfreqs=rates)
        files.append(SynthFile(rel or "", fmt, subject, session, labels, eeg, sfreq, float(seconds), rates is not None))
    if layout == "bids":

        files = write_bids(root, bids_items, files, mains_hz)
    kinds = list(rng.permutation(MALFORMED_KINDS))
    for j in range(n_malformed):
        kind = str(kinds[j % len(kinds)])
        spec = SPECS[kind]
        subject = _tuh_id(n_subjects + j) if layout == "tuh" else f"{n_subjects + j + 1:02d}"
        if layout == "tuh":
            rel = f"{subject}/s001_2012/01_tcp_ar/{subject}_s001_t000{spec.suffix}"
        elif layout == "bids":
            rel = f"sub-{subject}/ses-01/eeg/sub-{subject}_ses-01_task-rest_eeg{spec.suffix}"
        else:
            rel = f"{subject}/01/{subject}_01_bad{j:02d}{spec.suffix}"
        write_malformed(root / rel, kind, seed=seed + j)
        fmt = None if kind == "unknown_format" else ("fif" if spec.suffix.endswith(".fif") else "edf")
        files.append(SynthFile(rel, fmt, subject, "s001" if layout == "tuh" else "01", (), (), 256.0, 0.0, False, kind, spec.stage, spec.reason))
    manifest = SynthManifest(str(root), layout, seed, float(mains_hz), tuple(files))
    (root / "synth_manifest.json").write_text(manifest.to_json())
    return manifest
