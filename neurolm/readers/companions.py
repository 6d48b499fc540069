"""Every file a recording opens must be a regular file under the source root, and its own.

Why: multi-file formats name their other files inside the entry file —
BrainVision ``DataFile=``/``MarkerFile=``, EEGLAB ``EEG.data`` (the ``.fdt``),
FIF split parts (``FIFF_REF_FILE_NAME``) — and readers join those names to the
entry's folder unchecked: ``../../etc/passwd``, an absolute path, ``/dev/zero``,
a FIF split naming itself as its next part (the reader loops, concatenating the
same part until memory runs out), or another recording's ``.eeg``. Each of those
is refused with a reason before the reader opens the file:

- the resolved path (symbolic links followed) must lie under the source root
  (``root``; the entry file's own folder when no root is known);
- it must be a regular file (not a pipe, a device, a directory);
- a sidecar (``.eeg``/``.vmrk``/``.fdt``) whose stem matches *another* entry file
  in its folder belongs to that recording and is refused;
- FIF split chains may not revisit a part and have at most ``MAX_FIF_PARTS`` parts;
  a split part whose previous part lies beside it is read through that part only.

BrainVision headers and FIF split chains are checked before MNE opens the entry
(opening reads the marker file and follows the splits); the EEGLAB data file,
which MNE only opens when samples are read, is checked from the header's
``files`` (:func:`check_files`).
"""

from __future__ import annotations

import os
import re
import stat as stat_mod
from pathlib import Path

from neurolm.errors import BadInputError
from neurolm.readers.detect import detect_format

MAX_FIF_PARTS = 256
_VHDR_KEY = re.compile(r"^\s*(DataFile|MarkerFile)\s*=\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_OWNER = {".eeg": (".vhdr",), ".vmrk": (".vhdr",), ".fdt": (".set",)}
_KIND = ((stat_mod.S_ISFIFO, "a named pipe"), (stat_mod.S_ISCHR, "a character device"),
         (stat_mod.S_ISBLK, "a block device"), (stat_mod.S_ISSOCK, "a socket"), (stat_mod.S_ISDIR, "a directory"))


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def check_file(path: str, entry: str, root: str, what: str, shown: str | None = None) -> str:
    """The resolved ``path`` (named by ``entry`` as its ``what``) when it is allowed; BadInputError otherwise.

    ``shown``: the name as the header writes it (default: ``path`` relative to the entry's folder).
    """
    if shown is None:
        shown = path if os.path.isabs(path) and not os.path.isabs(entry) else os.path.relpath(
            path, os.path.dirname(os.path.abspath(entry)))
    real = os.path.realpath(path)
    real_root = os.path.realpath(root or os.path.dirname(os.path.abspath(entry)))
    if not _inside(real, real_root):
        raise BadInputError(f"the header names a {what} outside the source root ({shown!r}): refused")
    try:
        st = os.stat(real)
    except OSError as exc:
        raise BadInputError(f"the {what} named by the header ({shown!r}) cannot be opened: "
                            f"{exc.strerror or exc}") from None
    if not stat_mod.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KIND if test(st.st_mode)), "not a regular file")
        raise BadInputError(f"the {what} named by the header ({shown!r}) is {kind}, not a regular file: refused")
    stem, ext = os.path.splitext(real)
    real_entry = os.path.realpath(entry)
    for owner_ext in _OWNER.get(ext.lower(), ()):
        for cand in (stem + owner_ext, stem + owner_ext.upper()):
            if os.path.isfile(cand) and os.path.realpath(cand) != real_entry:
                raise BadInputError(f"the {what} named by the header ({shown!r}) belongs to another recording "
                                    f"({os.path.basename(cand)}): refused")
    return real


def brainvision_files(vhdr: str) -> list[tuple[str, str, str]]:
    """(what, path, name as written) of the data and marker files a BrainVision header names."""
    with open(vhdr, "rb") as fh:
        text = fh.read(1 << 20).decode("latin-1")
    out = []
    for key, value in _VHDR_KEY.findall(text):
        if value:
            what = "data file" if key.lower() == "datafile" else "marker file"
            out.append((what, os.path.join(os.path.dirname(vhdr), value), value))  # as MNE joins it
    return out


def _previous_part(fid, tree) -> str | None:
    """The file name a FIF split part names as the part before it (MNE writes it in parts 1, 2, ...)."""
    from mne._fiff.constants import FIFF
    from mne._fiff.tag import read_tag
    from mne._fiff.tree import dir_tree_find

    for node in dir_tree_find(tree, FIFF.FIFFB_REF):
        role, name = None, None
        for ent in node["directory"]:
            if ent.kind == FIFF.FIFF_REF_ROLE:
                role = int(read_tag(fid, ent.pos).data.item())
            elif ent.kind == FIFF.FIFF_REF_FILE_NAME:
                name = str(read_tag(fid, ent.pos).data)
        if role == FIFF.FIFFV_ROLE_PREV_FILE and name:
            return name
    return None


def fif_parts(path: str, root: str) -> list[str]:
    """The split parts of a raw FIF after ``path``, each checked before it is opened.

    A part whose previous part is present beside it is not a recording of its own: it is read through
    that part (refused here, so its samples are stored once).
    """
    from mne._fiff.open import _get_next_fname, fiff_open

    seen = {os.path.realpath(path)}
    parts: list[str] = []
    current = path
    while True:
        fid, tree, _ = fiff_open(Path(current), verbose="error")
        with fid:
            if current == path:
                prev = _previous_part(fid, tree)
                prev_path = os.path.join(os.path.dirname(path), os.path.basename(prev)) if prev else ""
                if prev and os.path.isfile(prev_path) and os.path.realpath(prev_path) not in seen:
                    raise BadInputError(f"a continuation part of a split FIF recording: read through the part "
                                        f"before it ({os.path.basename(prev)!r}), not ingested on its own")
            nxt = _get_next_fname(fid, Path(os.path.abspath(current)), tree)
        if nxt is None:
            return parts
        nxt = str(nxt)
        if not os.path.exists(nxt):
            return parts  # the reader reports the missing part in its own words
        real = check_file(nxt, path, root, "FIF split part")
        if real in seen:
            raise BadInputError(f"FIF split chain loops: {os.path.basename(current)!r} names "
                                f"{os.path.basename(nxt)!r}, already part of this recording, as its next part")
        if len(parts) >= MAX_FIF_PARTS:
            raise BadInputError(f"FIF split chain longer than {MAX_FIF_PARTS} parts")
        seen.add(real)
        parts.append(nxt)
        current = nxt


def check_companions(entry: str, root: str = "") -> None:
    """Refuse ``entry`` when a file its header names is not allowed (see module docstring)."""

    fmt = detect_format(entry)
    if fmt == "brainvision":
        for what, path, written in brainvision_files(entry):
            check_file(path, entry, root, what, written)
    elif fmt == "fif":
        fif_parts(entry, root)


def check_files(files, entry: str, root: str = "") -> None:
    """Refuse ``entry`` when a file its reader will open (``RecordingHeader.files``) is not allowed."""
    real_entry = os.path.realpath(entry)
    for f in files:
        if os.path.realpath(f) != real_entry:
            check_file(str(f), entry, root, "data file")
