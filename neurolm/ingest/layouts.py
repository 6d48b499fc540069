"""Recording metadata from the *place* of a file in its archive (BIDS, TUH, other trees).

Why: subject and session decide splits and the held-out registry, and they must
be known before any file is opened (discovery of 70k TUEG files cannot afford
a header read each, and a broken header must not lose the subject). So the
path is the primary source, exactly like braindecode's TUH loader which parses
subject/session/segment from the path first.

Three layouts, detected in this order:

- **BIDS** (``dataset_description.json`` at the root): entities come from the
  file name via :func:`mne_bids.get_entities_from_fname`; ``participants.tsv``
  columns (age, sex, ...) go into ``extra``. ``subject_key = "bids:<dataset>:<sub>"``.
- **TUH** (file names ``<id>_s<NNN>_t<NNN>.edf`` with an 8-character id, and
  TUEV ``<id>_<NNNNNNNN>.edf``): subject, session ``sNNN``, token ``tNNN``, the
  montage directory (``01_tcp_ar``/``02_tcp_le``/``03_tcp_ar_a``) or, when the
  path does not say, the suffix of the first channel (``-REF``/``-LE``).
  ``subject_key = "tuh:<id>"`` for *every* TUH corpus, so TUAB/TUEV/TUSL and
  TUEG share keys and a held-out TUAB subject is excluded from TUEG (NeuroLM#5).
  ``-LE`` (linked-ears, ``02_tcp_le``) files are skipped by default, as
  NeuroLM's pretraining script skips them; option ``tuh_le: keep`` ingests them
  (see :func:`le_montage_reason`).
- **Generic fallback** for any other tree, relative to the root:
  ``<subject>/<session>/.../file`` → subject = first directory, session = second
  directory (only when there are at least two directories above the file);
  ``<subject>/file`` → session ``""``; a file directly under the root → subject =
  file stem. ``subject_key = "<dataset>:<subject>"``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from neurolm.errors import ConfigError
from storage import fs

Layout = Literal["auto", "bids", "tuh", "generic"]
#: TUH -LE (linked-ears) montage files: "skip" (the reference's pretraining rule) or "keep"
TuhLe = Literal["skip", "keep"]
TUH_LE_MONTAGE = "02_tcp_le"

# TUEG/TUAB/TUSL: aaaaaaav_s004_t000 (v2+) or 00000258_s002_t000 (v1 numeric ids).
_TUH_FILE = re.compile(r"^(?P<subject>[a-z]{8}|\d{8})_(?P<session>s\d{3})_(?P<token>t\d{3})$")
# TUEV train: aaaaaaar_00000001 (subject, running index).
_TUEV_FILE = re.compile(r"^(?P<subject>[a-z]{8}|\d{8})_(?P<index>\d{8})$")
# TUEV eval: bckg_032_a_ / spsw_032_a_ (class, numeric eval subject, letter).
_TUEV_EVAL_FILE = re.compile(r"^(?P<cls>[a-z]{4})_(?P<subject>\d{3})_(?P<part>[a-z])_?$")
_TUH_MONTAGE_DIR = re.compile(r"^0\d_tcp_[a-z_]+$")
_TUH_SESSION_DIR = re.compile(r"^(?P<session>s\d{3})_(?P<date>\d{4}(?:_\d{2}){0,2})$")
_TUH_SPLIT_DIRS = {"train", "eval", "dev", "test"}
_TUH_LABEL_DIRS = {"normal", "abnormal"}
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """Lower-case identifier safe for keys and recording ids ("My EEG Set" → "my_eeg_set")."""
    out = _SLUG.sub("_", str(text).lower()).strip("_")
    return out or "dataset"


class SourceConfig(BaseModel):
    """How one source archive is named and treated.

    Why a config and not guessing: the mains frequency (notch) is a property of
    the *dataset* (NeuroLM notches TUAB/TUEV at 50 Hz but TUEG/TUSL at 60 Hz),
    and the subject-key family decides which corpora share subjects.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="dataset name used in recording ids and tables")
    root: str | None = Field(default=None, description="archive root (path or fsspec URL)")
    layout: Layout = "auto"
    mains_hz: float | None = Field(default=None, description="notch frequency; None = store default")
    family: str | None = Field(default=None, description="subject-key family; default per layout")
    tuh_le: TuhLe = Field(default="skip", description="TUH -LE montage files: skip (as NeuroLM) or keep")
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v or slug(v) != v:
            raise ValueError(f"dataset name {v!r} must be a lower-case slug like {slug(v)!r}")
        return v

    @field_validator("mains_hz")
    @classmethod
    def _mains_ok(cls, v: float | None) -> float | None:
        if v is not None and not 0 < v < 100:
            raise ValueError(f"mains_hz must be in (0, 100) Hz, got {v}")
        return v


def load_source_configs(path: str | os.PathLike[str]) -> dict[str, SourceConfig]:
    """Read ``sources:`` from a YAML file (see configs/sources.example.yaml).

    Raises ConfigError with the offending entry on any invalid value, before any work.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read source config {path}: {exc}") from exc
    sources = doc.get("sources") if isinstance(doc, dict) else None
    if not isinstance(sources, dict) or not sources:
        raise ConfigError(f"{path}: expected a non-empty mapping 'sources: {{name: {{...}}}}'")
    out: dict[str, SourceConfig] = {}
    for name, body in sources.items():
        try:
            out[str(name)] = SourceConfig(name=str(name), **(body or {}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: source {name!r}: {exc}") from exc
    return out


# ----------------------------------------------------------------------------- detection


def _read_text(root: str, name: str) -> str | None:
    """A small file at the root of a local tree or an fsspec URL (OpenNeuro on S3); None when absent."""

    try:
        return fs.read_bytes(fs.join(fs.normalize_url(root), name)).decode("utf-8", errors="replace")
    except OSError:  # absent, a directory, unreachable: not a BIDS root as far as we can tell
        return None


@functools.lru_cache(maxsize=256)
def _bids_description(root: str) -> dict | None:
    """Parsed dataset_description.json of a BIDS root, or None (cached: called per file)."""
    text = _read_text(root, "dataset_description.json")
    if text is None:
        return None
    try:
        return json.loads(text) or {}
    except ValueError:
        return {}  # a BIDS root with a broken description is still a BIDS root


@functools.lru_cache(maxsize=256)
def _participants(root: str) -> dict[str, dict[str, str]]:
    """participants.tsv rows keyed by bare subject label ("01"), n/a values dropped."""
    text = _read_text(root, "participants.tsv")
    if text is None:
        return {}
    rows: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"):
        pid = (row.pop("participant_id", "") or "").strip()
        if not pid:
            continue
        sub = pid[4:] if pid.startswith("sub-") else pid
        rows[sub] = {k.strip(): v.strip() for k, v in row.items()
                     if k and v is not None and v.strip() not in ("", "n/a")}
    return rows


def detect_layout(root: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> str:
    """"bids" when the root holds dataset_description.json; "tuh" when the file name
    follows a TUH pattern; "generic" otherwise."""
    if _bids_description(os.fspath(root)) is not None:
        return "bids"
    if path is not None and _tuh_match(Path(os.fspath(path)).stem) is not None:
        return "tuh"
    return "generic"


def _tuh_match(stem: str) -> dict[str, str] | None:
    for rx in (_TUH_FILE, _TUEV_FILE, _TUEV_EVAL_FILE):
        m = rx.match(stem)
        if m:
            return m.groupdict()
    return None


def montage_from_channels(ch_names: tuple[str, ...] | list[str]) -> str | None:
    """TUH montage directory name implied by the channel labels.

    ``-LE`` suffix → 02_tcp_le; ``-REF`` → 01_tcp_ar, or 03_tcp_ar_a when no A1/A2
    channel is present (the 03 montage is AR without ear electrodes). NeuroLM's
    own script looks at the first channel only; we look at the first EEG one.
    """
    labels = [c.upper().strip() for c in ch_names]
    eeg = [c for c in labels if c.startswith("EEG")] or labels
    if not eeg:
        return None
    first = eeg[0]
    if first.endswith("-LE"):
        return "02_tcp_le"
    if first.endswith("-REF"):
        has_ears = any(re.search(r"\bA[12]-REF$", c) for c in labels)
        return "01_tcp_ar" if has_ears else "03_tcp_ar_a"
    return None


def le_montage_reason(extra: dict[str, str], ch_names: tuple[str, ...] | list[str] | None = None) -> str | None:
    """Why a TUH file is not ingested for its -LE montage, or None.

    Why skip by default: NeuroLM's ``prepare_TUH_pretrain.py`` drops every file
    whose first channel ends in ``-LE`` (only ``-REF`` recordings reach its
    corpus), so a faithful corpus skips them. A file is -LE when it sits in a
    ``02_tcp_le`` folder or its first EEG label ends in ``-LE``. Applies only
    to items whose ``extra`` carries ``tuh_le = skip`` (the TUH layout's default).
    """
    if extra.get("tuh_le") != "skip":
        return None
    from_labels = montage_from_channels(tuple(ch_names)) if ch_names else None
    if TUH_LE_MONTAGE not in (extra.get("montage"), from_labels):
        return None
    return (f"TUH -LE montage ({TUH_LE_MONTAGE}): skipped like NeuroLM's pretraining script, which keeps "
            "-REF files only (tuh_le: keep ingests it)")


# ----------------------------------------------------------------------------- inference


def _relparts(root: str, path: str) -> tuple[str, ...]:
    try:
        return Path(os.path.relpath(path, root)).parts
    except ValueError:  # different drives / URLs: fall back to the full path
        return Path(path).parts


def _infer_bids(root: str, path: str, dataset: str | None) -> dict:
    import mne_bids  # local import: mne_bids pulls in MNE, only needed for BIDS trees

    desc = _bids_description(root) or {}
    name = dataset or slug(desc.get("Name") or Path(root).name)
    ents = mne_bids.get_entities_from_fname(Path(path).name, on_error="ignore")
    sub = ents.get("subject")
    if not sub:  # a file outside the naming scheme: use its sub-XX directory
        sub = next((p[4:] for p in _relparts(root, path) if p.startswith("sub-")), None)
    if not sub:
        return _infer_generic(root, path, name)
    ses = ents.get("session") or next(
        (p[4:] for p in _relparts(root, path) if p.startswith("ses-")), "")
    extra = {k: str(v) for k, v in ents.items() if v and k not in ("subject", "session")}
    extra.update({f"participant_{k}": v for k, v in _participants(root).get(sub, {}).items()})
    return dict(subject=sub, session=ses or "", subject_key=f"bids:{name}:{sub}",
                extra=extra, layout="bids", dataset=name)


def _infer_tuh(root: str, path: str, dataset: str | None,
               ch_names: tuple[str, ...] | None, tuh_le: TuhLe = "skip") -> dict | None:
    p = Path(path)
    m = _tuh_match(p.stem)
    if m is None:
        return None
    dirs = _relparts(root, path)[:-1]
    extra: dict[str, str] = {}
    if "cls" in m:  # TUEV eval file: the numeric id is only unique inside TUEV's eval set
        subject, session = f"eval{m['subject']}", ""
        extra.update(event_class=m["cls"], part=m["part"])
        key = f"tuh:tuev_eval_{m['subject']}"
    else:
        subject = m["subject"]
        session = m.get("session", "")
        if "token" in m:
            extra["token"] = m["token"]
        if "index" in m:
            extra["index"] = m["index"]
        key = f"tuh:{subject}"
    for d in dirs:
        if _TUH_MONTAGE_DIR.match(d):
            extra["montage"] = d
        elif (sm := _TUH_SESSION_DIR.match(d)):
            session = session or sm["session"]
            extra["session_date"] = sm["date"]
        elif d in _TUH_SPLIT_DIRS:
            extra["tuh_split"] = d
        elif d in _TUH_LABEL_DIRS:
            extra["tuh_label"] = d
    if "montage" not in extra and ch_names:
        mont = montage_from_channels(tuple(ch_names))
        if mont:
            extra["montage"] = mont
    extra["tuh_le"] = tuh_le
    return dict(subject=subject, session=session, subject_key=key, extra=extra,
                layout="tuh", dataset=dataset or "tuh")


def _infer_generic(root: str, path: str, dataset: str | None) -> dict:
    name = dataset or slug(Path(root).name)
    parts = _relparts(root, path)
    dirs = [d for d in parts[:-1] if d not in ("", ".", "..")]
    if dirs:
        subject = dirs[0]
        session = dirs[1] if len(dirs) >= 2 else ""
    else:
        subject, session = Path(parts[-1]).stem, ""
    return dict(subject=subject, session=session, subject_key=f"{name}:{subject}",
                extra={}, layout="generic", dataset=name)


def infer_metadata(root: str | os.PathLike[str], path: str | os.PathLike[str], *,
                   layout: Layout = "auto", dataset: str | None = None,
                   ch_names: tuple[str, ...] | list[str] | None = None,
                   family: str | None = None, tuh_le: TuhLe = "skip") -> dict:
    """Subject, session, held-out key and layout metadata of one file.

    Returns ``dict(subject, session, subject_key, extra: dict[str, str], layout, dataset)``.
    ``ch_names`` (the raw labels, when the caller already read the header) lets
    TUH files outside a montage directory get their montage. ``family`` overrides
    the subject-key family (``"<family>:<id>"``), e.g. to tie a private re-export
    of TUH files to the ``tuh`` family. ``tuh_le`` (TUH files only, carried in
    ``extra``): skip or keep -LE montage files, see :func:`le_montage_reason`.
    Never opens the file; never raises for a path that fits no layout (the
    generic rule always applies).
    """
    root_s, path_s = os.fspath(root), os.fspath(path)
    if layout not in ("auto", "bids", "tuh", "generic"):
        raise ConfigError(f"unknown layout {layout!r}; use auto, bids, tuh or generic")
    if tuh_le not in ("skip", "keep"):
        raise ConfigError(f"unknown tuh_le {tuh_le!r}; use skip or keep")
    kind = detect_layout(root_s, path_s) if layout == "auto" else layout
    meta = None
    if kind == "bids":
        meta = _infer_bids(root_s, path_s, dataset)
    elif kind == "tuh":
        meta = _infer_tuh(root_s, path_s, dataset, tuple(ch_names) if ch_names else None, tuh_le)
    if meta is None:  # generic, or a forced layout that the file does not follow
        meta = _infer_generic(root_s, path_s, dataset)
    if family:
        meta["subject_key"] = f"{family}:{meta['subject_key'].rsplit(':', 1)[-1]}"
    return meta


def metadata_for(source: SourceConfig, path: str | os.PathLike[str],
                 ch_names: tuple[str, ...] | list[str] | None = None) -> dict:
    """:func:`infer_metadata` driven by a :class:`SourceConfig` (its root, layout, name, family)."""
    if source.root is None:
        raise ConfigError(f"source {source.name!r} has no root")
    return infer_metadata(source.root, path, layout=source.layout, dataset=source.name,
                          ch_names=ch_names, family=source.family, tuh_le=source.tuh_le)


def extra_items(meta: dict) -> tuple[tuple[str, str], ...]:
    """``extra`` as the sorted tuple of pairs that :class:`SourceItem` carries."""
    return tuple(sorted((str(k), str(v)) for k, v in meta.get("extra", {}).items()))
