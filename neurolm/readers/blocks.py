"""Recordings read by sample range, for block-streamed ingestion of long files.

Why: a 24-h, 64-channel recording is ~22 GB of float32 at 1 kHz (5.6 GB at 256 Hz);
reading it whole makes a worker's memory grow with the recording. A
:class:`BlockSource` hands out ``[start, stop)`` sample ranges of the picked
channels instead, as float32 µV, so the standardizer can work block by block
(:func:`neurolm.standardize.standardize_stream`).

Which files stream: continuous EDF/EDF+C/BDF whose picked channels share one rate
(:func:`open_blocks`; only the records holding a range are read). Everything else
returns ``None`` and takes the whole-file path (``read_recording``): EDF+D/BDF+D
(records are placed at their onsets and gaps bridged across the whole signal),
mixed per-channel rates (polyphase resampling of whole channels), and the MNE
formats (GDF, FIF, BrainVision, EEGLAB, CNT: not wired to ``get_data(start, stop)``
yet). Their memory still grows with the recording (bounded by the per-file budget).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from neurolm.errors import BadInputError, describe
from neurolm.readers.detect import detect_format
from neurolm.readers.edf_data import can_read_range, pick_indices, read_edf_range
from neurolm.readers.edf_header import EdfLayout, parse_edf_header
from neurolm.readers.types import RawRecording


class BlockSource(Protocol):
    """The picked channels of one recording, read by sample range (float32 µV)."""

    sfreq: float
    ch_names: tuple[str, ...]
    n_samples: int

    def read(self, start: int, stop: int) -> np.ndarray:
        """float32 µV [n_channels, stop - start]; may be a view, callers copy what they keep."""
        ...


@dataclass(frozen=True, eq=False)
class ArraySource:
    """An in-memory recording as a block source (tests; the same code path as a file)."""

    raw: RawRecording

    @property
    def sfreq(self) -> float:
        return float(self.raw.sfreq)

    @property
    def ch_names(self) -> tuple[str, ...]:
        return tuple(self.raw.ch_names)

    @property
    def n_samples(self) -> int:
        return int(self.raw.data.shape[1])

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.raw.data[:, start:stop], np.float32)


@dataclass(frozen=True, eq=False)
class EdfSource:
    """Picked signals of a continuous, single-rate EDF/BDF file."""

    layout: EdfLayout
    idx: tuple[int, ...]
    format: str

    @property
    def sfreq(self) -> float:
        return self.layout.ns[self.idx[0]] / self.layout.record_s

    @property
    def ch_names(self) -> tuple[str, ...]:
        return tuple(self.layout.labels[i] for i in self.idx)

    @property
    def n_samples(self) -> int:
        return self.layout.n_records * self.layout.ns[self.idx[0]]

    def read(self, start: int, stop: int) -> np.ndarray:
        try:
            return read_edf_range(self.layout, self.idx, start, stop)
        except OSError as exc:  # vanished, unreadable or shrunk while reading
            raise BadInputError(f"{self.format} read failed: {describe(exc)}") from None


def open_blocks(path: str | os.PathLike, picks: Sequence[str]) -> EdfSource | None:
    """A block source for ``picks`` (raw labels) of ``path``, or None when the file must be read whole."""
    path = str(Path(path))
    fmt = detect_format(path)
    if fmt not in ("edf", "bdf"):
        return None
    try:
        lay = parse_edf_header(path, bdf=fmt == "bdf")
    except OSError as exc:
        raise BadInputError(f"{fmt} header read failed: {describe(exc)}") from None
    idx = tuple(pick_indices(lay, picks))
    return EdfSource(lay, idx, fmt) if can_read_range(lay, idx) else None
