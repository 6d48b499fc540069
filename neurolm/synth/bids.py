"""BIDS layout for synthetic corpora, written by mne-bids (so it is valid BIDS).

Why mne-bids rather than hand-made sidecars: the ingestion stage reads BIDS
through `mne_bids.BIDSPath`/`get_entities_from_fname`, so the fixture should
be whatever mne-bids itself considers valid (sidecars, participants.tsv,
dataset_description.json). Each recording is first written natively in a
temporary folder and then copied in by `write_raw_bids` (no re-encoding for
EDF/BDF/BrainVision/EEGLAB; FIF, GDF and CNT are stored as EDF because BIDS-EEG
does not allow them).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from neurolm.synth.writers import EXTENSION, write_recording

_BIDS_OK = ("edf", "bdf", "brainvision", "eeglab")


def write_bids(root: Path, items: list, files: list, mains_hz: float) -> list:
    """Write `items` (subject, session, k, fmt, data, sfreq, labels, date) under `root`."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    out = list(files)
    with tempfile.TemporaryDirectory(prefix="neurolm-bids-") as tmp:
        for (subject, session, k, fmt, data, sfreq, labels, date), pos in zip(items, range(len(items))):
            native = fmt if fmt in _BIDS_OK else "edf"
            src = write_recording(Path(tmp) / f"r{k}{EXTENSION[native]}", native, data, sfreq, labels, meas_date=date)
            raw = mne.io.read_raw(src, preload=False, verbose="error")
            raw.info["line_freq"] = float(mains_hz)
            bp = BIDSPath(subject=subject, session=session, task="rest", datatype="eeg", root=root)
            write_raw_bids(raw, bp, overwrite=True, verbose="error")
            written = bp.copy().update(suffix="eeg", extension=EXTENSION[native].replace("_raw", ""))
            rel = str(written.fpath.relative_to(root))
            out[pos] = dataclasses.replace(out[pos], path=rel, format=native)
    return out
