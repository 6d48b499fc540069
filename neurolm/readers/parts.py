"""The other files a multi-file recording declares, found without opening it with a reader.

Why: ingestion fingerprints every file a recording reads (a replaced BrainVision
``.eeg`` or EEGLAB ``.fdt`` must be re-ingested), including for files that fail
to read (a recording quarantined for a missing ``.eeg`` is retried once the file
appears). The reader's own list (``RecordingHeader.files``: FIF split parts, the
EEGLAB data file it resolved) is added when the header reads.

- BrainVision: ``DataFile=`` and ``MarkerFile=`` of the ``.vhdr``'s
  ``[Common Infos]`` (defaults: the header's stem with ``.eeg``/``.vmrk``).
- EEGLAB: ``<stem>.fdt`` (whether or not it exists: the data may be inside the
  ``.set``, and an ``.fdt`` appearing later changes what is read).
- Others: none (FIF split parts are only known from the file: ``files``).

Names are relative to the entry file's folder, as the header writes them.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from storage import fs

_HEAD_BYTES = 64 * 1024
_KEY = re.compile(r"^\s*(DataFile|MarkerFile)\s*=\s*(.*?)\s*$", re.IGNORECASE)


def _head(url: str) -> str:
    url = fs.normalize_url(url)
    if fs.is_local(url):
        with open(url, "rb") as fh:
            raw = fh.read(_HEAD_BYTES)
    else:
        f, p = fs.get_fs(url)
        with f.open(p, "rb") as fh:
            raw = fh.read(_HEAD_BYTES)
    return raw.decode("utf-8", errors="replace")


def declared_parts(path: str) -> list[str]:
    """Names (relative to the entry's folder) of the files ``path``'s format pairs with it; [] for one-file formats.

    Never raises: an unreadable header declares nothing (the reader reports the problem).
    """
    name = PurePosixPath(str(path).replace("\\", "/")).name
    low = name.lower()
    stem = name[: name.rfind(".")] if "." in name else name
    if low.endswith(".set"):
        return [stem + ".fdt"]
    if not low.endswith(".vhdr"):
        return []
    found = {"datafile": stem + ".eeg", "markerfile": stem + ".vmrk"}
    try:
        text = _head(path)
    except OSError:
        return sorted(set(found.values()))
    section = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s.lower()
            continue
        m = _KEY.match(line)
        if m and section == "[common infos]" and m.group(2):
            found[m.group(1).lower()] = m.group(2).replace("\\", "/")
    return sorted(set(found.values()))
