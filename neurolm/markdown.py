"""Text from source files (paths, labels, reasons) made inert in markdown artifacts.

Why: file names, channel labels and reasons quoting them come from the files;
a ``|`` breaks a table, ``<img src=...>`` or ``[x](javascript:...)`` becomes
markup in the Prefect UI. Every such value goes through :func:`md_text` (plain
text, markdown punctuation backslash-escaped, one line) or :func:`md_code` (an
inline code span whose fence is longer than any backtick run inside).
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~&$])")


def md_text(value: object) -> str:
    """``value`` as one line of literal markdown text."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def md_code(value: object) -> str:
    """``value`` as one inline code span, safe inside a table cell."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
