"""The ingest deployment on a Prefect server backed by PostgreSQL, served by a long-lived process.

A wide ingest (one file per batch, 200 batches, all submitted to Dask at once) runs
as a deployment run; every task run must reach the server exactly once and every
file must land in the store exactly once.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from neurolm.ingest import make_params
from storage.signal_store import SignalStore

# the 600-s default guards against hangs; a loaded shared CI machine needs more for these end-to-end runs
pytestmark = [pytest.mark.scaleout, pytest.mark.slow, pytest.mark.timeout(1800)]
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
N_FILES = 200
CHANNELS = ("FP1", "FP2", "C3", "C4")


def _tiny_edfs(root) -> list[str]:
    """N_FILES 20-s, 4-channel EDFs (long enough to pass the 10-s minimum after cropping)."""
    from neurolm.synth.edf_writer import write_edf

    rng = np.random.default_rng(0)
    paths = []
    for i in range(N_FILES):
        p = root / f"sub{i:03d}" / f"sub{i:03d}_rest.edf"
        p.parent.mkdir(parents=True)
        write_edf(p, rng.standard_normal((len(CHANNELS), 200 * 20)) * 20.0, 200.0, CHANNELS)
        paths.append(str(p))
    return paths


async def _task_runs(api: str, flow_run_id):
    """The deployment run, its fan-out subflow runs and their task runs, paged through the client."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        async with get_client() as client:
            parent = await client.read_flow_run(flow_run_id)
            subs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
            runs, offset = [], 0
            while True:
                page = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[s.id for s in subs])), limit=200,
                    offset=offset)
                runs += page
                offset += len(page)
                if len(page) < 200:
                    break
            return parent, subs, runs


async def _pg_count(db: str, table: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(db.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return int(await conn.fetchval(f"select count(*) from {table}"))
    finally:
        await conn.close()


def test_wide_ingest_deployment_on_postgres_loses_and_duplicates_nothing(prefect_pg, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    api, db, server_log = prefect_pg
    files = _tiny_edfs(tmp_path / "wide")
    store = str(tmp_path / "store")
    env = {**os.environ, "PREFECT_API_URL": api, "PYTHONPATH": ROOT, "NEUROLM_FANOUT_WINDOW": "256"}
    server = subprocess.Popen([sys.executable, os.path.join(HERE, "serve_flows.py")], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert server.stdout.readline().decode().strip() == "serving", "serve_flows.py did not start"
        params = make_params(source=str(tmp_path / "wide"), store=store, dataset="wide", workers=2, batch_size=1)
        with temporary_settings(updates={PREFECT_API_URL: api}):
            deadline = time.monotonic() + 120
            while True:  # the served deployment is registered shortly after "serving"
                try:
                    fr = run_deployment("neurolm-ingest/scaleout", parameters={"params": params.model_dump(mode="json")},
                                        timeout=1500, poll_interval=2)
                    break
                except ObjectNotFound:  # until the serving process has registered it
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
        assert fr.state.is_completed(), (fr.state, server.stdout.read1().decode()[-3000:] if server.poll() else "")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    parent, subs, runs = asyncio.run(_task_runs(api, fr.id))
    assert parent.deployment_id is not None and len(subs) == 1  # one fan-out subflow
    assert len(runs) == N_FILES  # one task run per batch (= file): nothing lost, nothing duplicated
    assert len({r.name for r in runs}) == N_FILES
    assert {r.state.type.value for r in runs} == {"COMPLETED"}
    # All 200 were submitted to Dask at once (window 256); Prefect 3 creates a task run on the server when a
    # worker starts it, so the server sees at most one running task run per worker thread: two here, at once.
    edges = sorted([(r.start_time, 1) for r in runs] + [(r.end_time, -1) for r in runs], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    assert peak == 2  # both workers reported task runs to the PostgreSQL-backed server concurrently
    assert asyncio.run(_pg_count(db, "task_run")) >= N_FILES  # the runs live in PostgreSQL
    password = db.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    with open(server_log) as f:
        assert password not in f.read()  # the database credentials are never logged

    st = SignalStore.open(store)
    rec = st.read_table("recordings")
    assert len(rec) == N_FILES and rec["recording_id"].is_unique
    assert len(st.committed_ids()) == N_FILES
    cat = st.read_table("catalog")
    assert cat["path"].is_unique and (cat["status"] == "ingested").all()
    assert sorted(os.path.basename(p) for p in cat["path"]) == sorted(os.path.basename(p) for p in files)
