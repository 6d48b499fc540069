"""Format detection by content (magic bytes), then by extension.

Why content first: archives contain files whose extension lies (renamed
exports, `.EDF` vs `.edf`, BrainVision headers saved as `.txt`, torch blobs
saved as `.edf` — see PEERS §A.2 EEGPT). A file whose content matches no known
signature is rejected even if its extension looks right, so random bytes named
`x.edf` become a one-line `BadInputError` instead of a crash deep in a reader.
The extension only decides between formats that share a container (a MAT or
HDF5 file is EEGLAB only when it is a `.set`).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from neurolm.errors import BadInputError

FORMATS = ("edf", "bdf", "gdf", "fif", "brainvision", "eeglab", "cnt")
EXTENSIONS = {
    ".edf": "edf", ".rec": "edf", ".bdf": "bdf", ".gdf": "gdf", ".fif": "fif",
    ".fif.gz": "fif", ".vhdr": "brainvision", ".set": "eeglab", ".cnt": "cnt",
}  # fmt: skip
#: Files that belong to another file's recording (read the header file instead).
COMPANION_EXTENSIONS = (".vmrk", ".eeg", ".fdt")
_FIFF_FILE_ID = struct.pack(">iii", 100, 31, 20)  # kind, type, size of the first tag


def _extension(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def _sniff(head: bytes, size: int, ext: str) -> str | None:
    if head[:8] == b"\xffBIOSEMI":
        return "bdf"
    if head[:1] == b"0" and head[1:8].strip(b" \x00") == b"":
        return "edf"
    if head[:4] == b"GDF ":
        return "gdf"
    if head[:12] == _FIFF_FILE_ID or head[:2] == b"\x1f\x8b" and ext == ".fif.gz":
        return "fif"
    if b"Brain Vision Data Exchange Header" in head[:200] or (
        b"BrainVision Data Exchange Header" in head[:200]
    ):
        return "brainvision"
    if head[:19] == b"MATLAB 5.0 MAT-file" or head[:8] == b"\x89HDF\r\n\x1a\n":
        return "eeglab" if ext in (".set", "") else None
    if head[:12].rstrip(b"\x00") == b"Version 3.0" and size >= 900:
        return "cnt"
    return None


def detect_format(path: str | os.PathLike) -> str:
    """Return one of `FORMATS` for `path`, or raise `BadInputError`."""
    p = Path(path)
    ext = _extension(p)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        raise BadInputError(f"cannot open file: {exc.strerror or exc}") from None
    if size == 0:
        raise BadInputError("empty file (0 bytes)")
    if ext in COMPANION_EXTENSIONS:
        raise BadInputError(f"{ext} is a companion file; read its header file instead")
    fmt = _sniff(head, size, ext)
    if fmt is not None:
        return fmt
    if ext in EXTENSIONS:
        raise BadInputError(
            f"unknown format: {ext} extension but content has no {EXTENSIONS[ext].upper()} signature"
        )
    raise BadInputError(f"unknown format: no known signature and unsupported extension {ext or '(none)'}")
