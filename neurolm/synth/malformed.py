"""Broken and edge-case files, each with the reason text a reader should give.

Why: every defect real archives contain (PEERS §B: truncated uploads, bad
header fields, NaN exports, random files with EEG extensions) must end as a
one-line quarantine reason, never a crash. Each kind here produces one file
and declares the stage that must catch it and a substring of its reason, so
tests can assert on the reason text rather than on "some exception".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurolm.errors import ConfigError
from neurolm.synth.edf_writer import write_edf
from neurolm.synth.signal import default_ch_names, synth_signal
from neurolm.synth.writers import write_recording

MALFORMED_KINDS = (
    "truncated", "corrupt_header", "zero_records", "no_eeg_channel",
    "too_short", "unknown_format", "nan_data", "absurd_header",
)  # fmt: skip


@dataclass(frozen=True)
class MalformedSpec:
    """What a malformed file is and who must reject it.

    `stage` is "reader" (read_header/read_recording raise BadInputError whose
    reason contains `reason`), "channels" (readable, but no channel maps to
    the vocabulary) or "standardize" (readable, too short for
    StandardizeConfig.min_duration_s=10 s).
    """

    kind: str
    stage: str
    reason: str
    suffix: str


SPECS = {
    "truncated": MalformedSpec("truncated", "reader", "truncated", ".edf"),
    "corrupt_header": MalformedSpec("corrupt_header", "reader", "corrupt header", ".edf"),
    "zero_records": MalformedSpec("zero_records", "reader", "zero records", ".edf"),
    "no_eeg_channel": MalformedSpec("no_eeg_channel", "channels", "EEG channel", ".edf"),
    "too_short": MalformedSpec("too_short", "standardize", "too short", ".edf"),
    "unknown_format": MalformedSpec("unknown_format", "reader", "unknown format", ".edf"),
    "nan_data": MalformedSpec("nan_data", "reader", "NaN data", "_raw.fif"),
    "absurd_header": MalformedSpec("absurd_header", "reader", "absurd header", ".edf"),
}


def _patch(path: Path, offset: int, text: str, width: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(text.encode("latin-1").ljust(width, b" ")[:width])


def write_malformed(path: str | Path, kind: str, seed: int = 0, sfreq: float = 256.0) -> MalformedSpec:
    """Write one malformed file of `kind` at `path` (suffix as in `SPECS[kind].suffix`)."""
    if kind not in SPECS:
        raise ConfigError(f"unknown malformed kind {kind!r}; choose from {', '.join(MALFORMED_KINDS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"EEG {n}-REF" for n in default_ch_names(19)]
    n_sig = len(names)
    if kind == "unknown_format":
        path.write_bytes(rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes())
    elif kind == "nan_data":
        x = synth_signal(n_sig, sfreq, 12, seed)
        x[int(rng.integers(0, n_sig))] = np.nan
        write_recording(path, "fif", x, sfreq, [n.split(" ")[1].split("-")[0] for n in names])
    elif kind == "no_eeg_channel":
        labels = ["EEG EKG1-REF", "PHOTIC-REF", "EMG-REF", "IBI", "BURSTS"]
        write_edf(path, synth_signal(len(labels), sfreq, 30, seed, ch_names=labels), sfreq, labels)
    elif kind == "too_short":
        write_edf(path, synth_signal(n_sig, sfreq, 4, seed), sfreq, names)
    else:
        write_edf(path, synth_signal(n_sig, sfreq, 12, seed), sfreq, names)
        if kind == "truncated":
            size = path.stat().st_size
            with open(path, "r+b") as fh:
                fh.truncate(size - int(2.5 * n_sig * sfreq * 2))
        elif kind == "corrupt_header":
            field = [(236, 8, "12x"), (256 + 104 * n_sig, 8, "abc"), (244, 8, "one")][seed % 3]
            _patch(path, *field[:1], field[2], field[1])
        elif kind == "zero_records":
            _patch(path, 236, "0", 8)
            with open(path, "r+b") as fh:
                fh.truncate(256 * (n_sig + 1))
        elif kind == "absurd_header":
            choice = seed % 3
            if choice == 0:  # physical min == max on channel 0
                _patch(path, 256 + 112 * n_sig, "-1", 8)
                _patch(path, 256 + 104 * n_sig, "-1", 8)
            elif choice == 1:
                _patch(path, 244, "0", 8)  # record duration 0 s -> sampling rate 0
            else:
                _patch(path, 236, "-5", 8)  # negative record count / duration
    return SPECS[kind]
