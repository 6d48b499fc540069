"""The local cluster's workers drop only the heartbeat traceback that races shutdown (it broke a CI run's clean log)."""

from __future__ import annotations

import logging

from distributed import Client, LocalCluster
from distributed.comm.core import CommClosedError

from flows.dask_quiet import HEARTBEAT_FAILED, HeartbeatOnClosedStream
from flows.runtime import dask_runner


def _record(message: str, error: BaseException | None) -> logging.LogRecord:
    exc_info = (type(error), error, None) if error else None
    return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, message, None, exc_info)


def test_filter_drops_only_the_closed_stream_heartbeat():
    quiet = HeartbeatOnClosedStream()
    assert not quiet.filter(_record(HEARTBEAT_FAILED, CommClosedError("in <TCP (closed)>: Stream is closed")))
    assert quiet.filter(_record(HEARTBEAT_FAILED, OSError("timed out")))  # another cause is still shown
    assert quiet.filter(_record(HEARTBEAT_FAILED, None))
    assert quiet.filter(_record("Compute Failed", CommClosedError("closed")))


def _worker_filters() -> list[str]:
    return [type(f).__name__ for f in logging.getLogger("distributed.worker").filters]


def test_local_cluster_workers_load_the_filter():
    with dask_runner(workers=1) as runner:
        kwargs = dict(runner.cluster_kwargs)
    kwargs["n_workers"] = 1
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        per_worker = client.run(_worker_filters)
    assert per_worker and all("HeartbeatOnClosedStream" in names for names in per_worker.values()), per_worker
