"""Is a channel's declared unit a voltage? (Only voltage channels can be EEG.)

Why: files carry skin conductance (µS), temperature (degC), SpO2 (%) and the
like under names that can look like electrodes (a BrainVision ``CP6`` declared
in µS). The name says EEG; the unit says it is not, and the unit wins.

A blank unit is taken as a voltage (µV), as the EDF reader scales it: many EEG
files leave it empty. Any other spelling that is not a known voltage is not.
"""

from __future__ import annotations

_VOLT_PREFIXES = ("", "u", "\u00b5", "\u03bc", "m", "n", "micro", "milli", "nano", "mk")
_VOLT_WORDS = ("v", "volt", "volts")
VOLTAGE_UNITS = frozenset(p + w for p in _VOLT_PREFIXES for w in _VOLT_WORDS)


def is_voltage(unit: str | None) -> bool:
    """True for ``uV``/``µV``/``mV``/``V``/``nV`` (any case, ``microvolts``...) and for a blank unit."""
    u = (unit or "").strip()
    try:  # a UTF-8 "µV" read as latin-1 (EDF headers are ASCII; some writers put UTF-8 there)
        u = u.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    u = u.lower().replace(" ", "").rstrip(".")
    return u == "" or u in VOLTAGE_UNITS


def non_voltage_reason(unit: str | None) -> str | None:
    """The drop reason for a channel declared in ``unit``, or None when it is a voltage."""
    return None if is_voltage(unit) else f"unit {str(unit).strip()} is not a voltage"
