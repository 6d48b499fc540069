"""The one mapper contract (neurolm.fanout) on both mappers: a failing item never stops the others."""

from __future__ import annotations

import asyncio
import functools
import operator

from prefect import flow, tags

from flows.fanout import DaskMapper
from flows.runtime import prefect_server
from neurolm.fanout import Outcome, local_map

ITEMS = [1.0, 2.0, 0.0, 4.0, 8.0, 0.0, 16.0]
FN = functools.partial(operator.truediv, 16.0)  # 16 / item: items 0.0 fail with ZeroDivisionError


def _check(outcomes: list[Outcome]) -> None:
    assert sorted(o.index for o in outcomes) == list(range(len(ITEMS)))  # each item reported exactly once
    for o in outcomes:
        if ITEMS[o.index] == 0.0:
            assert not o.ok and o.value is None and o.error.startswith("ZeroDivisionError")
            assert "\n" not in o.error
        else:
            assert o.ok and o.value == 16.0 / ITEMS[o.index]
    assert [o.label for o in sorted(outcomes, key=lambda o: o.index)] == [f"x{i}" for i in range(len(ITEMS))]


def test_local_map_reports_each_item_and_isolates_failures():
    outcomes: list[Outcome] = []
    local_map(FN, ITEMS, outcomes.append, [f"x{i}" for i in range(len(ITEMS))])
    _check(outcomes)


@flow(name="neurolm-test-fanout")
def _fan(window: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    DaskMapper(2, window=window, name="neurolm-test-items")(FN, ITEMS, outcomes.append,
                                                            [f"x{i}" for i in range(len(ITEMS))])
    return outcomes


def test_dask_mapper_failing_items_do_not_stop_the_others():
    with prefect_server(), tags("neurolm", "test"):
        state = _fan(2, return_state=True)  # a window smaller than the items: failures happen while others are queued
        outcomes = state.result()
        runs = asyncio.run(_runs_of(state.state_details.flow_run_id))
    _check(outcomes)
    # the flow runs keep their tags; the work items have none (no tag-concurrency round trip per task)
    flows, items = runs
    assert flows and all({"neurolm", "test"} <= set(f.tags) for f in flows)
    assert len(items) == len(ITEMS) and all(t.tags == [] for t in items)


async def _runs_of(parent_id) -> tuple[list, list]:
    from prefect import get_client

    async with get_client() as client:
        task_runs = await client.read_task_runs()
        flow_runs = await client.read_flow_runs()
    fan = [f for f in flow_runs if f.id == parent_id or f.parent_task_run_id in {t.id for t in task_runs
                                                                                 if t.flow_run_id == parent_id}]
    sub_ids = {f.id for f in fan} - {parent_id}
    return fan, [t for t in task_runs if t.flow_run_id in sub_ids and t.name.startswith("x")]
