"""Shared Prefect server and Dask task runner for every flow.

Why a shared server: without ``PREFECT_API_URL`` Prefect starts an *ephemeral*
API server inside each process that talks to it. A flow whose tasks run on
Dask worker processes would then start one server per worker, all on the same
SQLite file, which is slow (seconds each) and locks (prefect#15170, #19771).
:func:`prefect_server` starts ONE local server on 127.0.0.1 (a free port) when
no API is configured and exports its URL, so worker processes spawned
afterwards inherit it. A configured ``PREFECT_API_URL`` (a real server, the UI
of ``make ui``) is always used as is.

Why these Dask worker settings: one thread per worker process (MNE filtering
and the zarr codecs are CPU-bound; threads would fight over the GIL and BLAS
pools), one BLAS/OpenMP thread, and glibc's ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` at 1 GiB instead of Dask's ``MALLOC_TRIM_THRESHOLD_=65536``:
the standardizer's and MNE's large temporary arrays (tens of MB each) are then
reused from the heap file after file instead of going back and forth to the OS
as fresh, page-faulting mmaps (a value set in the caller's environment is
inherited unchanged). The scratch directory is a
temporary folder, never the working directory: Dask puts it on ``sys.path``
and its ``storage/`` spill folder would shadow our ``storage`` package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from neurolm.errors import NeurolmError

WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
              "NUMEXPR_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
              "DASK_LOGGING__DISTRIBUTED": os.environ.get("DASK_LOGGING__DISTRIBUTED", "warning"),
              # glibc: arrays under 1 GiB come from the heap and freed memory (up to 1 GiB) stays there
              # for the next file, instead of a fresh mmap per array whose every page faults in zeroed
              # (measured: ~0.3-0.5 s of system time per hour of EEG, ~24k page faults; see BENCHMARKS.md)
              "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", str(2**30)),
              "MALLOC_TRIM_THRESHOLD_": os.environ.get("MALLOC_TRIM_THRESHOLD_", str(2**30))}


@contextlib.contextmanager
def prefect_server(timeout_s: int = 120) -> Iterator[str]:
    """Yield the Prefect API URL to use, starting one local server when none is configured."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if configured:
        with temporary_settings(updates={PREFECT_API_URL: configured}):
            yield configured
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    try:
        server.start(timeout=timeout_s)
    except Exception as exc:  # a clear one-liner for the CLI instead of a traceback

        server.stop()
        raise NeurolmError(f"could not start a local Prefect server ({type(exc).__name__}: {exc}); "
                           "start one with `prefect server start` and set PREFECT_API_URL") from exc
    url = server.api_url
    os.environ["PREFECT_API_URL"] = url  # inherited by Dask worker processes spawned from here on
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield url
    finally:
        _drain_prefect_services()
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def _drain_prefect_services(timeout_s: float = 30.0) -> None:
    """Send queued events and logs while the server still runs (else they fail noisily at exit)."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
    except ImportError:  # pragma: no cover - other Prefect layouts
        return
    for service in (APILogWorker, EventsWorker):
        try:
            service.drain_all(timeout=timeout_s)
        except Exception:  # draining is best effort; stopping the server must still happen
            pass


@contextlib.contextmanager
def dask_runner(workers: int = 2, address: str | None = None) -> Iterator[object]:
    """A ``DaskTaskRunner``: an existing scheduler at ``address``, else a temporary local cluster.

    The local cluster has ``workers`` single-threaded processes and is closed
    when the flow that uses the runner ends; its scratch folder is removed here.
    """
    import dask
    from prefect_dask import DaskTaskRunner

    if address:
        yield DaskTaskRunner(address=address)
        return
    if not os.environ.get("DASK_LOGGING__DISTRIBUTED"):
        # The scheduler and nannies live in this process: their INFO chatter (start, retire, close
        # for every run) would bury the progress bar and the report. DASK_LOGGING__DISTRIBUTED=info
        # brings it back.
        logging.getLogger("distributed").setLevel(logging.WARNING)
    scratch = tempfile.mkdtemp(prefix="neurolm-dask-")
    restore_path = _flows_dir_last_on_sys_path()
    for key, value in WORKER_ENV.items():
        dask.config.set({f"distributed.nanny.pre-spawn-environ.{key}": value})
    try:
        yield DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={
                "n_workers": int(workers),
                "threads_per_worker": 1,
                "processes": True,
                # Loopback only, like the scheduler and the Prefect server; a free port, so runs never
                # clash. NEUROLM_DASK_DASHBOARD (e.g. ":8787" or "0.0.0.0:8787") exposes it deliberately.
                "host": "127.0.0.1",
                "dashboard_address": os.environ.get("NEUROLM_DASK_DASHBOARD", "127.0.0.1:0"),
                "local_directory": scratch,
                "env": dict(WORKER_ENV),
                # no shutdown-race heartbeat traceback at the end of a successful run (flows/dask_quiet.py)
                "preload": ["flows.dask_quiet"],
            },
        )
    finally:
        sys.path[:] = restore_path
        shutil.rmtree(scratch, ignore_errors=True)


def _flows_dir_last_on_sys_path() -> list[str]:
    """Put ``flows/`` last on ``sys.path`` (and the repo root on it) while local workers spawn; return the old path.

    Why: a deployment run loads a flow file as a script, and Prefect puts
    ``flows/`` on ``sys.path`` (importtools.load_script_as_module). Spawned Dask
    worker processes inherit ``sys.path``, so any module in ``flows/`` that is
    named like a standard-library module would shadow it in every worker (the
    token-corpus flow was once ``flows/tokenize.py``, and Python imports
    ``tokenize`` at start-up: every Nanny failed to start). Last, not removed: a
    worker unpickling a name from the script copy (module ``ingest``) still finds it.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    saved = list(sys.path)
    ours = [p for p in sys.path if os.path.abspath(p or os.curdir) == here]
    sys.path[:] = [p for p in sys.path if p not in ours] + ours
    if root not in {os.path.abspath(p or os.curdir) for p in sys.path}:
        sys.path.append(root)
    return saved


def run_name(stage: str, *fields: str) -> Callable[[], str]:
    """A ``flow_run_name`` for ``@flow``: the stage and the named fields of the run's ``params``.

    E.g. ``ingest tueg``, ``ingest-dataset hmc``, ``tokenize /corpora/tueg`` instead of a random
    ``heavy-rabbit``. Only strings are captured: Prefect may pickle the flow with it.
    """

    def name() -> str:
        from prefect.runtime import flow_run

        p = flow_run.parameters.get("params")
        get = p.get if isinstance(p, dict) else (lambda k: getattr(p, k, None))
        parts: list[str] = []
        for f in fields:
            v = get(f)
            text = str(v).rstrip("/").rsplit("/", 1)[-1] if v not in (None, "") else ""
            if text and text not in parts:  # paths by their last part; a property and its field once
                parts.append(text)
        return " ".join([stage, *parts])

    return name


@contextlib.contextmanager
def cli_run(stage: str) -> Iterator[str]:
    """What a ``run_<stage>`` runner wraps its flow in: the shared server and the tags ``neurolm``, the stage, ``cli``."""
    from prefect import tags

    with prefect_server() as url, tags("neurolm", stage, "cli"):
        yield url


def finished(summary: dict, quarantined: int, logger, quarantine: list[dict] | None = None):
    """The flow's return value: ``summary``, or a Completed state that says "completed with N quarantined".

    Each quarantined file is logged at warning level (the first 200; then a count), so a run with bad
    files is not a plain green "Completed" in the UI. Calling the flow still returns ``summary``.
    """
    if not quarantined and not quarantine:
        return summary
    from prefect.states import Completed

    shown = list(quarantine or [])[:200]
    for q in shown:
        logger.warning("quarantined %s: %s", q["path"], q["reason"])
    if quarantined > len(shown):
        logger.warning("... and %d more quarantined files (see the report artifact)", quarantined - len(shown))
    if not quarantined:  # only per-file notes (events skipped): logged, the run is a plain success
        return summary
    return Completed(message=f"completed with {quarantined} quarantined", data=summary)


def rounded_rows(rows: list[dict], cols=None, digits: int = 4) -> list[dict]:
    """Rows for a table artifact: floats to ``digits`` significant digits (not 16), only ``cols`` when given
    (those present), so the UI's table fits and reads."""
    keep = [c for c in cols if any(c in r for r in rows)] if cols else None
    out = []
    for r in rows:
        items = [(c, r.get(c)) for c in keep] if keep else list(r.items())
        out.append({k: (float(f"{v:.{digits}g}") if isinstance(v, float) else v) for k, v in items})
    return out


class RunEvents:
    """Progress events of one flow module, delivered to listeners in the same process (the CLI's progress bar).

    Why not Prefect events: the CLI wants every batch/step as it happens, in-process, with
    no round trip through the API. A failing listener never fails the run.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[dict], None]] = []

    def __reduce__(self):
        # Listeners (a progress bar, a closure over the CLI's state) belong to this process and never
        # travel: should a by-value copy of a flow function reach a Dask worker, its RunEvents
        # arrives there empty instead of dragging the caller's bar through pickle.
        return (RunEvents, ())

    def emit(self, event: dict) -> None:
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a broken progress display must not fail the run
                pass

    @contextlib.contextmanager
    def listening(self, fn: Callable[[dict], None] | None) -> Iterator[None]:
        if fn is None:
            yield
            return
        self._listeners.append(fn)
        try:
            yield
        finally:
            self._listeners.remove(fn)


class PreparedRuns:
    """A run prepared by a flow's runner (before the Prefect server starts), handed to the flow body.

    The runner (what the CLI calls) prepares the run once, so bad inputs fail
    fast with a one-line error and no server; the flow body takes that prepared
    run instead of preparing again. A flow started any other way (a deployment,
    the UI) finds none and prepares itself. Keyed by the params' JSON: Prefect
    hands the flow a validated copy of the params, not the same object.
    Process-local, like :class:`RunEvents`, and never pickled with its runs.
    """

    def __init__(self) -> None:
        self._runs: dict[str, object] = {}

    def __reduce__(self):
        return (PreparedRuns, ())

    @contextlib.contextmanager
    def holding(self, params, run) -> Iterator[None]:
        key = params.model_dump_json()
        self._runs[key] = run
        try:
            yield
        finally:
            self._runs.pop(key, None)

    def take(self, params, prepare: Callable):
        """The run prepared for ``params`` by this process's runner, else ``prepare(params)``."""
        run = self._runs.pop(params.model_dump_json(), None)
        return run if run is not None else prepare(params)
