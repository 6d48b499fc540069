"""One way for every stage to run its work items: a *mapper*.

A stage's library function splits its work into items (batches of files,
shards of a corpus), names the function that does one item, and hands both to
a mapper with a callback. The mapper runs ``fn(item)`` for every item, wherever
it likes, and calls ``on_outcome`` *in the caller's process* as each item ends.
The stage folds outcomes into its tables as they arrive, so a crash loses
nothing that finished.

Two mappers share this contract:

- :func:`local_map` (here): one item after another in this process. The default
  of every library function, used by tests, notebooks and ``--workers 0``.
- ``flows.fanout.DaskMapper``: Prefect tasks on a Dask cluster (local or
  external), a bounded number in flight, results streamed back.

Rules that keep both interchangeable:

- ``fn`` is a module-level function or a ``functools.partial`` of one with small
  arguments (URLs, ids): it is pickled for remote workers.
- ``fn`` returns small values (row dicts), never arrays.
- A failing item never stops the others: its outcome carries a one-line
  ``error`` and the stage decides (retry on the next run, report, fail the run
  at the end).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Outcome:
    """How one work item ended: its ``value``, or ``error`` (one line) when it failed."""

    index: int
    label: str
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


OnOutcome = Callable[[Outcome], None]


class Mapper(Protocol):
    """Runs ``fn`` on every item and reports each :class:`Outcome` to ``on_outcome`` as it ends."""

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any], on_outcome: OnOutcome,
                 labels: Sequence[str] | None = None) -> None: ...


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type: message`` on one line, at most ``limit`` characters."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def item_labels(items: Sequence[Any], labels: Sequence[str] | None, stem: str = "item") -> list[str]:
    """The given labels, or ``item-0``, ``item-1``…; checked against the number of items."""
    if labels is None:
        return [f"{stem}-{i}" for i in range(len(items))]
    labels = list(labels)
    if len(labels) != len(items):
        raise ValueError(f"{len(labels)} labels for {len(items)} items")
    return labels


def local_map(fn: Callable[[Any], Any], items: Sequence[Any], on_outcome: OnOutcome,
              labels: Sequence[str] | None = None) -> None:
    """The in-process mapper: items one after another; an exception becomes that item's error."""
    for i, (item, label) in enumerate(zip(items, item_labels(items, labels))):
        try:
            value = fn(item)
        except Exception as exc:  # one item's failure is reported, the others still run
            on_outcome(Outcome(i, label, error=one_line(exc)))
            continue
        on_outcome(Outcome(i, label, value=value))
