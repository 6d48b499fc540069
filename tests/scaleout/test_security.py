"""Security defaults: what the pipeline starts listens on loopback only; credentials never reach the logs."""

from __future__ import annotations

import ipaddress
import os

import psutil
import pytest

pytestmark = [pytest.mark.scaleout]


def _listening(procs) -> list[tuple[int, str, int]]:
    out = []
    for p in procs:
        try:
            conns = p.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        out += [(p.pid, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def test_local_dask_cluster_and_dashboard_listen_on_loopback_only():
    """The cluster a command starts (flows.runtime.dask_runner): scheduler, dashboard, nannies and workers."""
    from distributed import Client, LocalCluster

    from flows.runtime import dask_runner

    me = psutil.Process()
    before = {(ip, port) for _, ip, port in _listening([me])}
    with dask_runner(2) as runner:
        with LocalCluster(**runner.cluster_kwargs) as cluster, Client(cluster) as client:
            client.wait_for_workers(2, timeout=120)
            procs = [me, *me.children(recursive=True)]
            opened = [(pid, ip, port) for pid, ip, port in _listening(procs) if (ip, port) not in before]
            assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
            assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
    assert len(opened) >= 4, opened  # scheduler, dashboard, and each worker (+ its nanny) listen somewhere
    assert all(ipaddress.ip_address(ip).is_loopback for _, ip, _ in opened), opened


def test_ui_script_defaults_to_loopback():
    """flows/ui.sh binds the Prefect server to NEUROLM_UI_HOST, 127.0.0.1 unless set."""
    import re

    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "flows", "ui.sh")).read()
    assert re.search(r'^HOST="\$\{NEUROLM_UI_HOST:-127\.0\.0\.1\}"$', text, re.M)
    assert '--host "$HOST"' in text and "0.0.0.0" not in text
