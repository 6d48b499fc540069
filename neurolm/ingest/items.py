"""The unit of ingestion work: one source file and how to treat it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceItem:
    """One file to ingest, with everything the worker needs to process it alone.

    Produced by discovery (generic archives) or by a dataset adapter; consumed by
    the batch worker. Small and picklable: this is what crosses Prefect/Dask,
    never arrays.
    """

    path: str
    recording_id: str  # stable id, derived from the dataset and relative path
    dataset: str
    subject: str
    session: str = ""
    subject_key: str = ""  # "<family>:<id>", used by the held-out registry
    notch_hz: float | None = None  # None: the store config's default
    channels: tuple[str, ...] | None = None  # allowed vocab names; output in this order when given
    crop_end_s: float = 0.0  # seconds cut from the end (NeuroLM pretraining crops 10 s)
    extra: tuple[tuple[str, str], ...] = ()  # layout metadata (task, run, montage, token ...)
    #: the source root the file was found under: every file the recording opens (BrainVision data file,
    #: EEGLAB .fdt, FIF split parts) must be a regular file under it; "" = the entry file's own folder
    root: str = ""
