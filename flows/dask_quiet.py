"""Dask worker preload: no traceback for the heartbeat that races the local cluster's shutdown.

When a run ends, the temporary local cluster closes its scheduler and its
workers. A worker whose periodic heartbeat fires in between finds the
scheduler's stream already closed and ``distributed.worker`` logs
"Failed to communicate with scheduler during heartbeat." with a 30-line
``CommClosedError`` traceback on the terminal of a run that succeeded (seen in
CI). The worker is being closed anyway; that one record is dropped. Every other
record, and a heartbeat that fails for any other reason, is logged as before.
"""

from __future__ import annotations

import logging

HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat."


class HeartbeatOnClosedStream(logging.Filter):
    """Drop the worker's heartbeat error when its cause is a closed scheduler stream."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != HEARTBEAT_FAILED or not record.exc_info:
            return True
        from distributed.comm.core import CommClosedError

        return not isinstance(record.exc_info[1], CommClosedError)


def install() -> None:
    worker_log = logging.getLogger("distributed.worker")
    if not any(isinstance(f, HeartbeatOnClosedStream) for f in worker_log.filters):
        worker_log.addFilter(HeartbeatOnClosedStream())


def dask_setup(worker: object) -> None:  # the preload hook distributed calls in each worker process
    install()
