"""Test-wide environment: offline, no analytics, an isolated Prefect home.

Set before anything imports Prefect, so every test (and every Dask worker it
spawns, which inherits the environment) uses a temporary SQLite database.
"""

from __future__ import annotations

import os
import tempfile

_PREFECT_HOME = tempfile.mkdtemp(prefix="neurolm-prefect-home-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "-1")


def pytest_sessionfinish(session, exitstatus):
    """Errors during the tests still raise; only Prefect's exit-time flush to servers
    that tests have already stopped is kept from printing tracebacks after the summary."""
    import logging

    logging.raiseExceptions = False
