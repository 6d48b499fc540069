"""Value types produced by the readers (no I/O here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass(frozen=True)
class RecordingHeader:
    """What a file says about itself, read without loading the signal."""

    path: str
    format: str  # "edf" | "bdf" | "gdf" | "fif" | "brainvision" | "eeglab" | "cnt"
    ch_names: tuple[str, ...]  # raw labels as stored in the file
    ch_sfreqs: tuple[float, ...]  # per channel (EDF/BDF/GDF may mix rates)
    n_samples: int  # at `sfreq`
    meas_date: datetime | None = None
    #: declared unit per channel ("" when the file does not say); see :mod:`neurolm.readers.units`
    ch_units: tuple[str, ...] = ()
    #: digitized position per channel (x, y, z in metres, MNE head coordinates) for EEG
    #: channels whose file carries one (FIF channel locations), else None
    ch_locs: tuple[tuple[float, float, float] | None, ...] = ()
    #: every file the reader opens for the samples (MNE formats: ``raw.filenames``), checked before reading
    files: tuple[str, ...] = ()

    @property
    def sfreq(self) -> float:
        return float(max(self.ch_sfreqs)) if self.ch_sfreqs else 0.0

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sfreq if self.sfreq else 0.0


@dataclass(frozen=True, eq=False)
class RawRecording:
    """A loaded recording: float32 µV, all picked channels at one rate."""

    data: np.ndarray  # float32 [n_ch, n_samples], µV
    sfreq: float
    ch_names: tuple[str, ...]  # raw labels of the rows of `data`
    format: str
    mixed_sfreq: bool = False  # True when some channels were brought up to `sfreq`
    meas_date: datetime | None = None

    @property
    def duration_s(self) -> float:
        return self.data.shape[1] / self.sfreq
