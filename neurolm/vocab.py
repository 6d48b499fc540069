"""NeuroLM's channel vocabulary and the normalisation of real-world channel names.

The vocabulary is NeuroLM's ``standard_1020`` list (139 entries, ``pad`` at 136),
in the original order, so channel indices are compatible with published weights.

Conventions kept from NeuroLM (documented deviations are marked):
- Old and new 10-20 names are *distinct* entries (T3 is 88, T7 is 37; T5/P7,
  T4/T8, T6/P8 likewise). We never alias one to the other: a model trained on
  TUH data learnt T3's embedding, not T7's.
- The 16 bipolar TCP names (``FP1-F7`` ...) are entries of their own.
- Deviation: the original compares uppercased names to a list that contains
  mixed-case ``FTT9h``-style entries, so those six could never match. We compare
  case-insensitively and keep the original spelling in ``VOCAB``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

VOCAB_VERSION = "neurolm-standard_1020-139-v1"

_TEN_TEN = [
    "FP1", "FPZ", "FP2",
    "AF9", "AF7", "AF5", "AF3", "AF1", "AFZ", "AF2", "AF4", "AF6", "AF8", "AF10",
    "F9", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8", "F10",
    "FT9", "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "FT10",
    "T9", "T7", "C5", "C3", "C1", "CZ", "C2", "C4", "C6", "T8", "T10",
    "TP9", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6", "TP8", "TP10",
    "P9", "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "P10",
    "PO9", "PO7", "PO5", "PO3", "PO1", "POZ", "PO2", "PO4", "PO6", "PO8", "PO10",
    "O1", "OZ", "O2", "O9", "CB1", "CB2", "IZ", "O10",
]
_OLD_AND_REFERENCE = ["T3", "T5", "T4", "T6", "M1", "M2", "A1", "A2"]
_CFC_CCP = [f"CFC{i}" for i in range(1, 9)] + [f"CCP{i}" for i in range(1, 9)]
_EXTRA = ["T1", "T2", "FTT9h", "TTP7h", "TPP9h", "FTT10h", "TPP8h", "TPP10h"]
BIPOLAR = (
    "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
    "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2",
)
VOCAB: tuple[str, ...] = tuple(_TEN_TEN + _OLD_AND_REFERENCE + _CFC_CCP + _EXTRA + list(BIPOLAR) + ["pad", "I1", "I2"])
PAD_INDEX = VOCAB.index("pad")
EMBEDDING_ROWS = 256  # nn.Embedding(256, d) in the original; indices must stay below this

_INDEX = {name.upper(): i for i, name in enumerate(VOCAB) if name != "pad"}

# The 23 channels of NeuroLM's TUAB/TUEV/TUSL scripts, in their order.
TUH_23 = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8",
          "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ", "T1", "T2")

# Tokens that mark a channel as not EEG, checked on the whole normalised name.
_NON_EEG = re.compile(
    r"(^|[^A-Z])(EOG|ECG|EKG|EMG|RESP|PHOTIC|IBI|BURSTS|SUPPR|SPO2|SAO2|PULSE|HR|"
    r"PLETH|STI|STIM|STATUS|TRIGGER|EVENT|ANNOTATIONS?|MARK|DC\d*|LOC|ROC|VEO|HEO|"
    r"VEOG|HEOG|CHIN|LEG|THOR|ABD|SNORE|POS|LIGHT|TEMP|ROSC|EDF)([^A-Z]|$)"
)
_PREFIX = re.compile(r"^(EEG|EEG-|EEG_|POL|SEEG)\s*[-_ ]?")
_REF_SUFFIX = re.compile(r"[-_ ]?(REF|LE|AR|AVG|AV|CAR|M1|M2|A1|A2|A1A2|LINKED|CZ)$")


def index_of(name: str) -> int:
    """Vocabulary index of a vocabulary name (case-insensitive); KeyError otherwise."""
    return _INDEX[name.upper()]


@dataclass(frozen=True)
class ChannelName:
    """Outcome of normalising one raw channel label."""

    raw: str
    name: str | None  # vocabulary spelling, or None when dropped
    kind: str  # "eeg" | "bipolar" | "non_eeg" | "unknown"

    @property
    def index(self) -> int | None:
        return None if self.name is None else index_of(self.name)


def _clean(raw: str) -> str:
    s = raw.strip().upper().replace(".", "").replace("\x00", "")
    s = re.sub(r"\s+", " ", s)
    return s


def normalize_channel_name(raw: str) -> ChannelName:
    """Map a channel label as found in a file to a vocabulary name.

    Handles TUH ``EEG FP1-REF`` / ``EEG FP1-LE``, case, spaces, dots and padding
    (``Fp1.``, ``FP1 ``), reference suffixes (``-REF``, ``-LE``, ``-AVG``,
    ``-M2``...), ``EEG`` prefixes and bipolar pairs (``EEG FP1-F7``, ``Fp1-F7``).
    Non-EEG channels (EOG, ECG, EMG, respiration, photic, annotations...) return
    kind ``non_eeg``; anything else that matches nothing is ``unknown``.
    """
    s = _clean(raw)
    if not s:
        return ChannelName(raw, None, "unknown")
    if _NON_EEG.search(s):
        return ChannelName(raw, None, "non_eeg")
    s = _PREFIX.sub("", s).strip()
    s = s.replace(" ", "")
    if s in _INDEX and s != "PAD":
        return ChannelName(raw, VOCAB[_INDEX[s]], "bipolar" if "-" in s else "eeg")
    # Bipolar pair written with other separators or a trailing reference.
    parts = re.split(r"[-_]", s)
    if len(parts) == 2 and all(parts):
        pair = f"{parts[0]}-{parts[1]}"
        if pair in _INDEX:
            return ChannelName(raw, VOCAB[_INDEX[pair]], "bipolar")
    # A single electrode with a reference suffix, e.g. FP1-REF, C3-M2, O1_AVG.
    base = _REF_SUFFIX.sub("", s) if len(s) > 2 else s
    if base and base in _INDEX and "-" not in base and base != "PAD":
        return ChannelName(raw, VOCAB[_INDEX[base]], "eeg")
    return ChannelName(raw, None, "unknown")


@dataclass(frozen=True)
class ChannelSelection:
    """Which file channels are kept, as what, and what was dropped and why."""

    positions: tuple[int, ...]  # positions in the file's channel list
    names: tuple[str, ...]  # vocabulary names, same order
    indices: tuple[int, ...]  # vocabulary indices, same order
    dropped: tuple[tuple[str, str], ...] = field(default=())  # (raw label, reason)

    @property
    def n_channels(self) -> int:
        return len(self.positions)


def select_channels(raw_names: list[str] | tuple[str, ...], allowed: tuple[str, ...] | None = None) -> ChannelSelection:
    """Keep vocabulary EEG channels in file order; drop the rest with a reason.

    Duplicates (two labels normalising to the same name, e.g. ``FP1-REF`` and
    ``Fp1``) are resolved deterministically: the first occurrence in file order
    wins and a warning names both. ``allowed`` restricts the result to a subset
    of vocabulary names (e.g. a dataset's fixed channel set).
    """
    allowed_upper = None if allowed is None else {a.upper() for a in allowed}
    positions, names, dropped = [], [], []
    seen: dict[str, str] = {}
    for pos, raw in enumerate(raw_names):
        ch = normalize_channel_name(raw)
        if ch.name is None:
            dropped.append((raw, "non-EEG channel" if ch.kind == "non_eeg" else "not in vocabulary"))
            continue
        if allowed_upper is not None and ch.name.upper() not in allowed_upper:
            dropped.append((raw, f"{ch.name} not in the selected channel set"))
            continue
        if ch.name in seen:
            warnings.warn(f"duplicate channel {ch.name!r}: keeping {seen[ch.name]!r}, dropping {raw!r}", stacklevel=2)
            dropped.append((raw, f"duplicate of {seen[ch.name]!r}"))
            continue
        seen[ch.name] = raw
        positions.append(pos)
        names.append(ch.name)
    return ChannelSelection(
        positions=tuple(positions),
        names=tuple(names),
        indices=tuple(index_of(n) for n in names),
        dropped=tuple(dropped),
    )
