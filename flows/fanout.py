"""The one Dask mapper: every stage's work items as Prefect tasks on Dask (see :mod:`neurolm.fanout`).

A ``neurolm-fanout`` subflow (renamed per stage, e.g. ``neurolm-ingest-batches``)
runs inside the calling flow, on a ``DaskTaskRunner`` built from the run's own
``workers``/``dask_address``, so a deployment or UI run fans out on Dask exactly
like the CLI. Each item is one ``work-item`` task named after the item.

- A sliding window of tasks in flight, not all at once: a 70k-file archive is
  ~9k batches, and thousands of pending task runs load the Prefect API and the
  Dask scheduler (prefect#8579). 4 per local worker, 64 on an external scheduler;
  ``NEUROLM_FANOUT_WINDOW`` overrides both (a cluster of more than 64 workers needs it).
- Outcomes are handed to the caller's callback in this process as tasks finish;
  tasks return small values only (prefect#12668).
- A failed item is an :class:`~neurolm.fanout.Outcome` with an error; the
  others go on.
- No Prefect result caching (``NO_CACHE``): each stage's store is its cache.
- Work-item task runs carry no tags (the flow runs keep theirs: ``neurolm``, the stage,
  ``cli``): for a tagged task run Prefect's engine asks the server for tag concurrency
  slots before it starts, even when no limit exists -- measured up to 2.3 s of a worker's
  time before one batch of an ingest run (issue 15). Concurrency here is the Dask
  workers' and the window's.

What travels to Dask is the task, the item, ``fn`` (a module-level function
or a partial of one) and the serialized flow-run context, which holds the
subflow's function *by value*. So that function, and everything it names,
must stay free of process-local objects (bars, listeners, locks, clients):
the job (items, callback) stays in :data:`_JOBS` in this process and is
reached only through the module-level function :func:`_job`.
"""

from __future__ import annotations

import collections
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import TagsContext
from prefect.futures import as_completed

from flows.runtime import dask_runner
from neurolm.fanout import OnOutcome, Outcome, item_labels, one_line


@task(name="work-item", cache_policy=NO_CACHE, retries=0)
def work_item(fn: Callable[[Any], Any], item: Any) -> Any:
    """One work item on a Dask worker."""
    return fn(item)


@dataclass(frozen=True)
class _Job:
    """What one fan-out works on; kept in this process, never sent to the Prefect API or to Dask."""

    fn: Callable[[Any], Any]
    items: Sequence[Any]
    labels: list[str]
    on_outcome: OnOutcome


# Why a registry instead of flow parameters: Prefect stores every flow-run parameter as JSON in its
# database; the items of a 70k-file archive would be tens of MB per run. A subflow runs in its
# parent's process, so the parent hands it a key into this dict instead.
_JOBS: dict[str, _Job] = {}


def _job(job_id: str) -> _Job:
    """The job registered under ``job_id`` in this process (a function, so it travels by reference)."""
    return _JOBS[job_id]


@flow(name="neurolm-fanout")
def fanout(job_id: str, n_items: int, window: int = 8) -> dict:
    """Run job ``job_id``'s items as ``work-item`` tasks, ``window`` in flight; report each outcome as it ends."""
    job = _job(job_id)
    queue = collections.deque(range(len(job.items)))
    in_flight: dict = {}

    def submit_next() -> None:
        i = queue.popleft()
        with TagsContext(current_tags=set()):  # untagged: no tag-concurrency round trip per task (module doc)
            fut = work_item.with_options(task_run_name=job.labels[i]).submit(job.fn, job.items[i])
        in_flight[fut] = i

    while queue and len(in_flight) < max(1, window):
        submit_next()
    failed = 0
    while in_flight:
        fut = next(as_completed(list(in_flight)))
        i = in_flight.pop(fut)
        if queue:
            submit_next()
        try:
            outcome = Outcome(i, job.labels[i], value=fut.result())
        except Exception as exc:  # one item failed (its task, its worker): the others go on
            outcome = Outcome(i, job.labels[i], error=one_line(exc))
            failed += 1
        job.on_outcome(outcome)
    return {"items": n_items, "failed": failed}


def _window_from_env() -> int | None:
    """``NEUROLM_FANOUT_WINDOW``: task runs in flight per fan-out (a cluster wider than 64 workers needs more)."""
    raw = os.environ.get("NEUROLM_FANOUT_WINDOW", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"NEUROLM_FANOUT_WINDOW must be a positive integer, got {raw!r}")
    return int(raw)


def fanout_run_name(name: str, n_items: int) -> str:
    """The fan-out subflow's run name: its parent run's name, what it runs and how many (never a random one).

    E.g. ``ingest tueg: ingest-batches (9 items)``; a run outside any flow run is named by its items alone.
    """
    from prefect.runtime import flow_run

    what = f"{name.removeprefix('neurolm-')} ({n_items} item{'s' if n_items != 1 else ''})"
    parent = flow_run.name if flow_run.get_id() else None
    return f"{parent}: {what}" if parent else what


class DaskMapper:
    """A :class:`neurolm.fanout.Mapper` on Dask: ``workers`` local processes, or the scheduler at ``address``.

    Must be called inside a flow run (the fan-out is then a subflow of it). The
    local cluster lives only while the items run, so planning and table writing
    never hold it. ``name`` names the subflow in the UI.
    """

    def __init__(self, workers: int = 2, address: str | None = None, *, name: str = "neurolm-fanout",
                 window: int | None = None) -> None:
        self.workers = int(workers)
        self.address = address
        self.name = name
        self.window = window or _window_from_env() or (4 * self.workers if not address else 64)

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any], on_outcome: OnOutcome,
                 labels: Sequence[str] | None = None) -> None:
        if not items:
            return
        job_id = uuid.uuid4().hex
        _JOBS[job_id] = _Job(fn, list(items), item_labels(items, labels), on_outcome)
        try:
            with dask_runner(self.workers, self.address) as runner:
                fanout.with_options(name=self.name, task_runner=runner,
                                    flow_run_name=fanout_run_name(self.name, len(items)))(job_id, len(items),
                                                                                          self.window)
        finally:
            _JOBS.pop(job_id, None)
