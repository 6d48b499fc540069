"""Serve the pipeline's flows as deployments (``flow.serve``): a long-lived process that runs each
deployment run it is handed in a subprocess, like ``prefect worker start`` on a process pool.

Used by tests/scaleout/test_prefect_postgres.py against a PostgreSQL-backed server
(``PREFECT_API_URL`` comes from the environment). Prints ``serving`` once registered.
"""

from __future__ import annotations

import importlib.util

from prefect import serve

from flows.ingest import ingest_flow

if __name__ == "__main__":
    deployments = [ingest_flow.to_deployment(name="scaleout")]
    if importlib.util.find_spec("flows.build") is not None:  # the build flow, where this checkout has it
        from flows.build import build_flow

        deployments.append(build_flow.to_deployment(name="scaleout"))
    print("serving", flush=True)
    serve(*deployments, limit=4, print_starting_message=False)
