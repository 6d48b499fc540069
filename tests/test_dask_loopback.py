"""The local Dask cluster listens on loopback only: scheduler, workers and dashboard (issue: it bound all interfaces)."""

from __future__ import annotations

import ipaddress

import psutil
from distributed import LocalCluster

from flows.runtime import dask_runner


def test_local_cluster_binds_loopback_only():
    with dask_runner(workers=1) as runner:
        kwargs = dict(runner.cluster_kwargs)
    kwargs["n_workers"] = 1
    with LocalCluster(**kwargs) as cluster:
        assert "127.0.0.1" in cluster.dashboard_link
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = [c.laddr for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening, "the cluster listens somewhere"
        assert all(ipaddress.ip_address(a.ip).is_loopback for a in listening), listening
