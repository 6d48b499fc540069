"""The build's own record: which key each step of a build last completed with, and what it gave.

Layout (local path or fsspec URL; the build's output root)::

    ROOT/build-state.json   {"kind": "neurolm-build-state", "format_version": 1,
                             "steps": {STEP: {"key", "config", "outputs", "completed", "summary"}}}
    ROOT/.build.lock        StoreLock while a build runs (one build per root)

Why a file of its own: the plan (``neurolm build --dry-run``) must be computable
without running any stage, so the build keeps, per step, the key it last
completed with (a hash of the step's config and its upstream keys) and the
step's ``outputs``. A step is recorded only after it completed, in one atomic
write (``storage.fs.write_json_atomic``), so a build killed at any moment leaves
either the old record or the new one; the step that was running has no record
and runs again (the stage's own commit markers make that a continuation).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from neurolm.errors import StoreError
from storage import fs
from storage.lock import StoreLock

STATE_FILE = "build-state.json"
LOCK_FILE = ".build.lock"
KIND = "neurolm-build-state"
FORMAT_VERSION = 1


def state_url(root: str) -> str:
    return fs.join(fs.normalize_url(root), STATE_FILE)


def read_state(root: str) -> dict[str, dict[str, Any]]:
    """``{step: record}`` of the build under ``root``; empty when it never completed a step."""
    try:
        doc = fs.read_json(state_url(root))
    except FileNotFoundError:
        return {}
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise StoreError(f"{state_url(root)} is not a neurolm build state file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{state_url(root)} has format_version {doc.get('format_version')}; "
                         f"this neurolm reads {FORMAT_VERSION}")
    return dict(doc.get("steps") or {})


def record_step(root: str, step: str, key: str, outputs: dict[str, Any], *, config: dict[str, Any] | None = None,
                summary: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record that ``step`` completed with ``key`` (read, update, one atomic write); returns the record.

    Only the build holding :func:`build_lock` calls this, so read-modify-write is safe.
    """
    steps = read_state(root)
    rec = {"key": key, "outputs": dict(outputs), "config": config or {}, "summary": summary or {},
           "completed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    steps[step] = rec
    fs.write_json_atomic(state_url(root), {"kind": KIND, "format_version": FORMAT_VERSION, "steps": steps})
    return rec


def forget_steps(root: str, names: list[str]) -> None:
    """Drop the records of ``names`` (``--force``): they run again whatever their key."""
    steps = read_state(root)
    if not any(n in steps for n in names):
        return
    for n in names:
        steps.pop(n, None)
    fs.write_json_atomic(state_url(root), {"kind": KIND, "format_version": FORMAT_VERSION, "steps": steps})


def build_lock(root: str, owner_label: str, timeout_s: float = 10.0) -> StoreLock:
    """The one lock of a build root: two builds on one root would race on every stage's outputs."""
    return StoreLock(fs.normalize_url(root), owner_label, timeout_s=timeout_s, lock_name=LOCK_FILE)
