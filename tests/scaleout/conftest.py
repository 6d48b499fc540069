"""Session fixtures of the scale-out tests: one PostgreSQL-backed Prefect server and one S3 server for the session.

Both are started by these fixtures and stopped at the end of the session (``.ci/run``
starts nothing itself). A missing PostgreSQL or moto skips the tests that need it,
with the reason.
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Test-only credentials for the local S3 server; the code under test reads them from the environment.
S3_ENV = {"AWS_ACCESS_KEY_ID": "neurolm-test", "AWS_SECRET_ACCESS_KEY": "neurolm-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def prefect_pg(tmp_path_factory):
    """A ``prefect server start`` on a throwaway PostgreSQL, both on loopback: (API URL, database URL, server log)."""
    why = servers.postgres_missing()
    if why:
        pytest.skip(f"PostgreSQL-backed Prefect server unavailable: {why}")
    log = str(tmp_path_factory.mktemp("prefect-pg") / "server.log")
    with servers.postgres() as db, servers.prefect_server(db, log) as api:
        yield api, db, log


@pytest.fixture(scope="session")
def prefect_api(request):
    """The Prefect API for the object-store and cluster tests: the PostgreSQL one when available, else SQLite."""
    if servers.postgres_missing():
        from flows.runtime import prefect_server

        with prefect_server() as url:
            yield url
        return
    yield request.getfixturevalue("prefect_pg")[0]


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's S3 server on loopback; the S3 settings go into the environment for this session only."""
    why = servers.moto_missing()
    if why:
        pytest.skip(f"S3 server unavailable: {why}")
    with servers.s3_server() as endpoint:
        saved = {k: os.environ.get(k) for k in (*S3_ENV, "AWS_ENDPOINT_URL")}
        os.environ.update({**S3_ENV, "AWS_ENDPOINT_URL": endpoint})
        try:
            yield endpoint
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def bucket(s3_endpoint, request):
    """A fresh bucket per test: ``s3://<name>``."""
    import s3fs

    name = "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:50].strip("-")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir(name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small mixed corpus: 4 recordings of about 1.5 min (EDF, BDF) and one malformed file."""
    from neurolm.synth import synth_corpus

    return synth_corpus(tmp_path_factory.mktemp("scaleout-src") / "synth", n_recordings=4, minutes=1.5,
                        n_malformed=1, seed=5, formats=("edf", "bdf"))


@pytest.fixture(scope="session")
def local_ref(corpus, prefect_api, tmp_path_factory):
    """``corpus`` ingested, uninterrupted, into a local store with one local worker: the reference."""
    from flows.ingest import run_ingest
    from neurolm.ingest import make_params

    store = str(tmp_path_factory.mktemp("scaleout-ref") / "store")
    saved = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = prefect_api
    try:
        run_ingest(make_params(source=corpus.root, store=store, dataset="synth", workers=1, batch_size=1))
    finally:
        if saved is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = saved
    return store
