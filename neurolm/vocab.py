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
- A derivation between two reference electrodes (``EEG A2-A1``, ``M2-M1``) is
  not a brain channel: NeuroLM's Workload script drops ``A2-A1`` by hand; we
  drop it everywhere (kind ``reference``) instead of mislabelling it ``A2``.
- BioSemi caps label their positions ``A1``..``A32``, ``B1``..``B32``... These
  are *not* 10-20 sites (BioSemi ``A1`` is near Cz, ``C3`` is not 10-20 C3), and
  a single label cannot tell. ``select_channels`` therefore looks at the whole
  label set: when it contains BioSemi-only labels (``A3``, ``B17``...), every
  ``<letter><number>`` label is dropped as a BioSemi cap position. Mapping those
  positions to 10-20 needs the cap's layout, which the file does not carry; a
  dataset adapter that knows it should rename channels before selection.
  Letters A-I count: ``I1``/``I2`` in a BioSemi label set are cap positions
  like ``A1``, not the 10-5 sites I1/I2 (letters past the cap's banks still
  follow the same ``<letter><1-32>`` pattern).
- A channel whose declared unit is not a voltage (µS, degC, %) is dropped
  whatever its name (``unit µS is not a voltage``); see
  :mod:`neurolm.readers.units`.
- Channels whose label names no site (``EEG 001``) but whose file carries a
  digitized position can be named by that position
  (:mod:`neurolm.positions`); ``select_channels(by_position=...)`` takes the result.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from neurolm.errors import BadInputError, ConfigError
from neurolm.readers.units import non_voltage_reason

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
_REFERENCE_SITES = frozenset({"A1", "A2", "M1", "M2"})
# BioSemi cap positions: a letter A-I and 1-32 (A1..A32, B1..B32, ..., I1, I2).
_BIOSEMI = re.compile(r"^[A-I]([1-9]|[12][0-9]|3[0-2])$")
_REF_SUFFIX = re.compile(r"[-_ ]?(REF|LE|AR|AVG|AV|CAR|M1|M2|A1|A2|A1A2|LINKED|CZ)$")


def index_of(name: str) -> int:
    """Vocabulary index of a vocabulary name (case-insensitive); KeyError otherwise."""
    return _INDEX[name.upper()]


@dataclass(frozen=True)
class ChannelName:
    """Outcome of normalising one raw channel label."""

    raw: str
    name: str | None  # vocabulary spelling, or None when dropped
    kind: str  # "eeg" | "bipolar" | "non_eeg" | "reference" | "unknown"

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
    m = _REF_SUFFIX.search(s) if len(s) > 2 else None
    base = s[: m.start()] if m else s
    if m and base in _REFERENCE_SITES and m.group(1) in _REFERENCE_SITES:
        return ChannelName(raw, None, "reference")  # A2-A1, M2-M1: reference derivation
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


def _is_biosemi_layout(cleaned: list[str]) -> bool:
    """True when the label set holds BioSemi-only positions (A3, B17 ...).

    ``A1``/``A2``/``C3``/``F4`` exist in both systems, so they prove nothing; a
    ``<letter><number>`` label that is *not* a vocabulary name does. Eight of
    them are required (BioSemi caps have 16-32 per letter) so that a couple of
    stray labels such as bare EOG ``E1``/``E2`` never trigger it.
    """
    return sum(1 for s in cleaned if _BIOSEMI.match(s) and s not in _INDEX) >= 8


def _normalize_allowed(allowed: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Allowed names in vocabulary spelling; unknown names are a user error."""
    out: list[str] = []
    for a in allowed:
        ch = normalize_channel_name(a)
        if ch.name is None:
            raise ConfigError(f"allowed channel {a!r} is not a vocabulary channel name")
        if ch.name not in out:
            out.append(ch.name)
    return tuple(out)


def select_channels(
    raw_names: list[str] | tuple[str, ...],
    allowed: tuple[str, ...] | list[str] | None = None,
    reorder: bool = False,
    *,
    units: Sequence[str] | None = None,
    by_position: Mapping[str, str] | None = None,
) -> ChannelSelection:
    """Keep vocabulary EEG channels; drop the rest with a reason.

    Duplicates (two labels normalising to the same name, e.g. ``FP1-REF`` and
    ``Fp1``) are resolved deterministically: the first occurrence in file order
    wins and a warning names both. ``allowed`` restricts the result to a subset
    of vocabulary names (e.g. a dataset's fixed channel set; any spelling that
    normalises to a vocabulary name is accepted).

    Order: file order by default, as NeuroLM's pretraining script keeps it. With
    ``reorder=True`` the output follows ``allowed`` exactly (NeuroLM's fixed
    23-channel TUAB order, the 4 HMC and 19 Workload orders) and a missing
    allowed channel raises ``BadInputError("missing channels: ...")``: a sample
    with a hole in a fixed montage cannot be fed to a fixed-montage task.

    BioSemi label sets (``A1``..``A32``, ``B1``.. with BioSemi-only names among
    them) are recognised as a whole and their positions dropped, never read as
    10-20 ``A1``/``C3`` (see the module docstring).

    ``units`` (one per raw name, "" for unknown) drops channels declared in a
    unit that is not a voltage. ``by_position`` maps raw labels that name no
    site (``EEG 001``) to the vocabulary site their digitized position is
    nearest to (:func:`neurolm.positions.map_positions`); a raw label absent
    from it keeps its usual drop reason.
    """
    if reorder and allowed is None:
        raise ConfigError("select_channels(reorder=True) needs the allowed channel order")
    allowed_names = None if allowed is None else _normalize_allowed(allowed)
    allowed_set = None if allowed_names is None else set(allowed_names)
    biosemi = _is_biosemi_layout([_PREFIX.sub("", _clean(r)).replace(" ", "") for r in raw_names])
    positions, names, dropped = [], [], []
    seen: dict[str, str] = {}
    if units is not None and len(units) != len(raw_names):
        raise ConfigError(f"{len(units)} units for {len(raw_names)} channel names")
    for pos, raw in enumerate(raw_names):
        if biosemi and _BIOSEMI.match(_PREFIX.sub("", _clean(raw)).replace(" ", "")):
            dropped.append((raw, "BioSemi cap position, not a 10-20 site"))
            continue
        ch = normalize_channel_name(raw)
        if ch.name is None and ch.kind == "unknown" and by_position and raw in by_position:
            ch = ChannelName(raw, VOCAB[_INDEX[by_position[raw].upper()]], "eeg")
        if ch.name is None:
            dropped.append((raw, _DROP_REASON.get(ch.kind, "not in vocabulary")))
            continue
        unit_reason = non_voltage_reason(units[pos]) if units is not None else None
        if unit_reason is not None:
            dropped.append((raw, unit_reason))
            continue
        if allowed_set is not None and ch.name not in allowed_set:
            dropped.append((raw, f"{ch.name} not in the selected channel set"))
            continue
        if ch.name in seen:
            warnings.warn(f"duplicate channel {ch.name!r}: keeping {seen[ch.name]!r}, dropping {raw!r}", stacklevel=2)
            dropped.append((raw, f"duplicate of {seen[ch.name]!r}"))
            continue
        seen[ch.name] = raw
        positions.append(pos)
        names.append(ch.name)
    if reorder:
        assert allowed_names is not None
        missing = [a for a in allowed_names if a not in names]
        if missing:
            raise BadInputError(f"missing channels: {', '.join(missing)}")
        where = {n: p for n, p in zip(names, positions)}
        names = list(allowed_names)
        positions = [where[n] for n in names]
    return ChannelSelection(
        positions=tuple(positions),
        names=tuple(names),
        indices=tuple(index_of(n) for n in names),
        dropped=tuple(dropped),
    )


_DROP_REASON = {
    "non_eeg": "non-EEG channel",
    "reference": "derivation between reference electrodes",
    "unknown": "not in vocabulary",
}
