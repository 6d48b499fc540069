"""Real servers on loopback for the scale-out tests: PostgreSQL, a Prefect server on it, an S3 server, a Dask cluster.

Each starter is a context manager that starts the server as a subprocess bound to
127.0.0.1 on a free port, waits until it answers, yields its address and stops it
(and deletes its data) on exit. Nothing here is a mock: the code under test talks
to the same server programs a deployment uses.

- PostgreSQL: ``initdb`` + ``pg_ctl`` (Debian's PostgreSQL 15) in a throwaway data
  directory. PostgreSQL refuses to run as root, so under root the server runs as
  the unprivileged ``postgres`` system user (``runuser``); the data directory lives
  in a fresh ``/tmp`` folder owned by that user.
- S3: moto's server (``python -m moto.server``), the S3 API in pure Python, from pip.
- Dask: ``dask scheduler`` + ``dask worker`` processes from this virtualenv.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator

BIN = os.path.dirname(sys.executable)
PG_BIN = os.environ.get("NEUROLM_PG_BIN", "/usr/local/bin")
PG_USER = "postgres"  # the OS user the server runs as when we are root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace")[-3000:] if proc.stdout else ""
            raise RuntimeError(f"{what} exited with {proc.returncode} before it answered:\n{out}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer within {timeout:.0f}s")
        time.sleep(0.3)


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def postgres_missing() -> str | None:
    """Why PostgreSQL cannot be started here, or None."""
    for exe in ("initdb", "pg_ctl", "postgres"):
        if not os.access(os.path.join(PG_BIN, exe), os.X_OK):
            return f"PostgreSQL server binaries not found in {PG_BIN} (set NEUROLM_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and no '{PG_USER}' user to run PostgreSQL as"
        if not shutil.which("runuser"):
            return "running as root and no runuser to drop privileges for PostgreSQL"
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "asyncpg is not installed"
    return None


def moto_missing() -> str | None:
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        return f"moto[server] and s3fs are needed for the object-store tests ({exc})"
    return None


def _as_pg_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1; yields ``postgresql+asyncpg://prefect:PASSWORD@127.0.0.1:PORT/postgres``."""
    root = tempfile.mkdtemp(prefix="neurolm-pg-")
    data, port = os.path.join(root, "data"), free_port()
    if os.geteuid() == 0:
        pw = pwd.getpwnam(PG_USER)
        os.chown(root, pw.pw_uid, pw.pw_gid)
    run = {"check": True, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "cwd": root}
    password = secrets.token_hex(16)  # a real password, so tests can check it is never logged
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w") as f:
        f.write(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    try:
        subprocess.run(_as_pg_user([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "prefect", "-A",
                                    "scram-sha-256", "--pwfile", pwfile, "-E", "UTF8", "--no-sync"]), **run)
        os.unlink(pwfile)
        opts = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        subprocess.run(_as_pg_user([os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-o", opts, "-l",
                                    os.path.join(root, "server.log"), "-w", "-t", "120", "start"]), **run)
        try:
            yield f"postgresql+asyncpg://prefect:{password}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(_as_pg_user([os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _health(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        return r.status == 200


@contextlib.contextmanager
def prefect_server(db_url: str, log_path: str) -> Iterator[str]:
    """``prefect server start`` on 127.0.0.1 with its database at ``db_url``; yields the API URL."""
    port = free_port()
    env = {**os.environ, "PREFECT_API_DATABASE_CONNECTION_URL": db_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": ""}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([os.path.join(BIN, "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                 str(port), "--no-ui"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        url = f"http://127.0.0.1:{port}/api"
        try:
            wait_until(lambda: _health(url), "prefect server", timeout=240, proc=proc)
            yield url
        finally:
            stop(proc)


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: urllib.request.urlopen(f"{url}/moto-api/", timeout=5).status == 200, "moto server",
                   timeout=120, proc=proc)
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def dask_cluster(n_workers: int, scratch: str, env: dict[str, str]) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """``dask scheduler`` + ``n_workers`` single-threaded ``dask worker`` processes on loopback.

    Yields (scheduler address, worker processes) so a test can kill a worker.
    """
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = os.path.join(BIN, "dask")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", "127.0.0.1:0"], env=env, cwd=scratch,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    workers = [subprocess.Popen([dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                 "--name", f"w{i}", "--local-directory", scratch, "--no-dashboard",
                                 "--no-nanny"], env=env, cwd=scratch,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n_workers)]
    procs += workers
    try:
        def up() -> bool:
            with Client(address, timeout=10) as client:
                client.wait_for_workers(n_workers, timeout=180)
            return True

        wait_until(up, "dask cluster", timeout=240, proc=procs[0])
        yield address, workers
    finally:
        for p in reversed(procs):
            stop(p, timeout=20)
