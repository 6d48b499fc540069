"""`make ui` end to end: a real local Prefect server, the work pool, every deployment of
prefect.yaml registered, two of them (ingest, rebuild) run through the process worker, clean shutdown.

Why not all six through the worker: each worker run is a fresh flow-run process (Prefect, the
flow's imports, its own Dask cluster): ~15-30 s each on a 2-core box. The other four deployments
run the same flow functions the CLI tests drive through their default paths (tests/test_cli_defaults.py);
here their registration, work pool and parameter forms are checked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STARTUP_S = 300  # a loaded 2-core CI box can take minutes to start the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_prefect_yaml_entrypoints_exist(monkeypatch):
    """Only real flows: every entrypoint loads the way a worker loads it (the file as a script from the
    checkout) into a Prefect flow whose single parameter validates the deployment's default values."""
    from prefect.flows import Flow, load_flow_from_entrypoint

    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    assert doc["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $NEUROLM_REPO }}"
    monkeypatch.chdir(REPO)  # what the pull step does
    monkeypatch.setattr(sys, "path", list(sys.path))  # loading a script puts flows/ on sys.path: undone after
    scripts = {Path(d["entrypoint"].split(":")[0]).stem for d in doc["deployments"]}
    for name in scripts & set(sys.modules):
        monkeypatch.delitem(sys.modules, name)
    for dep in doc["deployments"]:
        flow = load_flow_from_entrypoint(dep["entrypoint"], use_placeholder_flow=False)
        assert isinstance(flow, Flow), dep["entrypoint"]
        assert list(flow.parameters.properties) == ["params"], dep["entrypoint"]  # one typed pydantic parameter
        gpu = dep["name"] in ("train-tokenizer", "tokenize", "pretrain")  # docs/DEPLOYMENT.md: the two pools
        assert dep["work_pool"]["name"] == ("neurolm-gpu" if gpu else "neurolm-cpu"), dep["name"]
        assert set(dep["parameters"]) == {"params"}
        values = {k: (str(v).replace("{{ $NEUROLM_REPO }}", str(REPO)) if isinstance(v, str) else v)
                  for k, v in dep["parameters"]["params"].items()}
        annotation = typing.get_type_hints(flow.fn)["params"]
        annotation.model_validate(values)  # the shipped defaults are valid parameters of the flow
    for name in scripts & set(sys.modules):  # the script copies (module "ingest" ...) must not leak into other tests
        del sys.modules[name]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """flows/ui.sh on a free port with a temporary PREFECT_HOME; stopped with SIGINT (Ctrl-C)."""
    home = tmp_path_factory.mktemp("prefect-ui-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(NEUROLM_UI_PORT=str(port), NEUROLM_PREFECT_HOME=str(home), PYTHONUNBUFFERED="1",
               PREFECT_WORKER_QUERY_SECONDS="1")  # the worker polls every second, not every 10 s
    proc = subprocess.Popen(["bash", str(REPO / "flows" / "ui.sh")], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    deadline = time.monotonic() + STARTUP_S
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "neurolm UI ready" in line:
                break
        assert lines and "neurolm UI ready" in lines[-1], "\n".join(lines)
        yield {"url": f"http://127.0.0.1:{port}/api", "port": port, "proc": proc, "lines": lines, "home": home}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # our own session only
                proc.wait()


async def _deployments(url: str):
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api=url) as client:
        deps = await client.read_deployments()
        flows = {f.id: f.name for f in await client.read_flows()}
        pools = [p.name for p in await client.read_work_pools()]
    return {f"{flows[d.flow_id]}/{d.name}": d for d in deps}, pools


async def _flow_run_names(url: str) -> set[str]:
    from prefect.client.orchestration import PrefectClient

    async with PrefectClient(api=url) as client:
        flows = {f.id: f.name for f in await client.read_flows()}
        return {flows[r.flow_id] for r in await client.read_flow_runs() if r.state and r.state.is_completed()}


def _cli(argv: list[str]) -> int:
    from neurolm.cli import rebuild as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def _write_source(root: Path) -> None:
    from neurolm.synth.writers import write_recording

    rng = np.random.default_rng(3)
    path = root / "S01" / "ses1" / "rest.edf"
    path.parent.mkdir(parents=True)
    write_recording(path, "edf", rng.normal(scale=20, size=(3, 250 * 20)), 250.0,
                    ("EEG FP1-REF", "EEG FP2-REF", "EEG CZ-REF"))


@pytest.mark.slow
def test_ui_registers_deployments_and_runs_two(ui, tmp_path, capsys):
    deps, pools = asyncio.run(_deployments(ui["url"]))
    assert {"neurolm-cpu", "neurolm-gpu"} <= set(pools)
    doc = yaml.safe_load((REPO / "prefect.yaml").read_text())
    expected = {d["name"] for d in doc["deployments"]}
    assert {name.split("/", 1)[1] for name in deps} == expected
    assert {"ingest-scheduled", "ingest-on-demand", "rebuild"} <= expected
    for name, d in deps.items():
        assert d.work_pool_name in ("neurolm-cpu", "neurolm-gpu"), name
        assert d.pull_steps[0]["prefect.deployments.steps.set_working_directory"]["directory"] == str(REPO)
        schema = d.parameter_openapi_schema
        assert list(schema["properties"]) == ["params"] and schema.get("definitions"), name  # a UI form
    sched = deps["neurolm-ingest/ingest-scheduled"]
    assert [s.schedule.cron for s in sched.schedules] == ["0 2 * * *"]
    assert sched.parameters["params"]["store"] == str(REPO / "data" / "store")  # env template resolved
    rebuild = deps["neurolm-rebuild/rebuild"]
    assert "notch_hz" in rebuild.parameter_openapi_schema["definitions"]["RebuildParams"]["properties"]

    # two deployments through the process worker: a tiny ingest, then a rebuild of its store (its flow
    # fans out on a local Dask cluster inside the worker's flow-run process)
    from prefect.client.orchestration import PrefectClient
    from prefect.deployments import run_deployment
    from neurolm.ingest.rebuild import version_summaries
    from storage.signal_store import SignalStore

    src, store = tmp_path / "src", tmp_path / "store"
    _write_source(src)

    async def run(name: str, params: dict):
        async with PrefectClient(api=ui["url"]) as client:
            return await run_deployment(name, client=client, timeout=240, poll_interval=1, as_subflow=False,
                                        parameters={"params": params})

    def worker_log() -> str:
        return (Path(ui["home"]) / "worker-cpu.log").read_text()[-3000:]

    fr = asyncio.run(run("neurolm-ingest/ingest-on-demand", {"source": str(src), "store": str(store), "workers": 1}))
    assert fr.state is not None and fr.state.is_completed(), f"{fr.state}\n{worker_log()}"
    old = SignalStore.open(str(store))
    assert len(old.committed_ids()) == 1 and old.config.notch_hz == 60.0

    fr = asyncio.run(run("neurolm-rebuild/rebuild", {"store": str(store), "notch_hz": 50, "workers": 1}))
    assert fr.state is not None and fr.state.is_completed(), f"{fr.state}\n{worker_log()}"

    # the CLI against the same server: the rerun finds the version built by the worker complete
    os.environ["PREFECT_API_URL"] = ui["url"]
    try:
        capsys.readouterr()
        assert _cli(["rebuild", "--store", str(store), "--notch", "50", "--workers", "1"]) == 0
        assert "nothing to do" in capsys.readouterr().out
    finally:
        os.environ.pop("PREFECT_API_URL", None)
    new = SignalStore.open(str(store))
    assert new.version_id != old.version_id and new.config.notch_hz == 50.0
    assert sorted(os.listdir(Path(new.version_url) / "qc")) == \
        ["qc_amplitude.png", "qc_channel_coverage.png", "qc_psd.png"]  # QC of the new version
    assert new.committed_ids() == old.committed_ids()
    assert {v["version_id"]: v["current"] for v in version_summaries(str(store))} == \
        {old.version_id: False, new.version_id: True}
    assert _cli(["rebuild", "--store", str(store), "--remove", old.version_id]) == 0
    assert [v["version_id"] for v in version_summaries(str(store))] == [new.version_id]
    runs = asyncio.run(_flow_run_names(ui["url"]))
    assert {"neurolm-ingest", "neurolm-rebuild", "neurolm-rebuild-batches"} <= runs


def _build_config(tmp: Path) -> Path:
    """A five-step build (generated archive -> ingest -> tokenizer -> tokenize -> pretrain), tiny settings."""
    (tmp / "tok.yaml").write_text("model: {preset: tiny}\ntrain: {preset: tiny, steps: 4, ckpt_every: 2, "
                                  "warmup_steps: 1, num_workers: 0}\n")
    path = tmp / "build.yaml"
    path.write_text(f"""\
name: deployed
outputs: {{root: {tmp / 'out'}}}
synth:
  corpus: {{out: {tmp / 'src'}, recordings: 6, formats: [edf], minutes: 1, malformed: 1, seed: 0, layout: flat}}
sources:
  - {{source: {tmp / 'src'}, dataset: src, seed: 3, workers: 1}}
train_tokenizer: {{config: {tmp / 'tok.yaml'}}}
tokenize: {{workers: 0, shard_size: 8}}
pretrain: {{config: tiny, steps: 2, batch_size: 2, text_batch_size: 0, max_len: 256, warmup_steps: 1}}
""")
    return path


async def _build_run_view(url: str, flow_run_id) -> tuple[list[str], str]:
    """The stage flows that ran as subflows of one build run, and its build-report artifact."""
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    async with PrefectClient(api=url) as client:
        flows = {f.id: f.name for f in await client.read_flows()}
        tasks = {t.id for t in await client.read_task_runs() if t.flow_run_id == flow_run_id}
        children = sorted(flows[r.flow_id] for r in await client.read_flow_runs()
                          if r.parent_task_run_id in tasks and r.state and r.state.is_completed())
        arts = await client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["neurolm-build-report"]), flow_run_id=ArtifactFilterFlowRunId(
                any_=[flow_run_id])))
    return children, "\n".join(str(a.data) for a in arts)


@pytest.mark.slow
def test_the_build_deployment_runs_through_the_worker(ui, tmp_path):
    """The build deployment, started on the server and run by the cpu pool's process worker: one parent run with
    its stage runs as subflows and the build's report artifact; started again, it does nothing and says so."""
    from prefect.client.orchestration import PrefectClient
    from prefect.deployments import run_deployment
    from storage import build_state

    deps, _ = asyncio.run(_deployments(ui["url"]))
    assert deps["neurolm-build/build"].work_pool_name == "neurolm-cpu"
    config = _build_config(tmp_path)

    async def run():
        async with PrefectClient(api=ui["url"]) as client:
            return await run_deployment("neurolm-build/build", client=client, timeout=420, poll_interval=1,
                                        as_subflow=False, parameters={"params": {"config": str(config)}})

    def worker_log() -> str:
        return (Path(ui["home"]) / "worker-cpu.log").read_text()[-3000:]

    fr = asyncio.run(run())
    assert fr.state is not None and fr.state.is_completed(), f"{fr.state}\n{worker_log()}"
    children, report = asyncio.run(_build_run_view(ui["url"], fr.id))
    assert children == ["neurolm-ingest", "neurolm-pretrain", "neurolm-tokenize", "neurolm-train-tokenizer"]
    state = build_state.read_state(str(tmp_path / "out"))
    assert set(state) == {"synth", "ingest src", "train-tokenizer", "tokenize", "pretrain"}
    model = state["pretrain"]["outputs"]["model"]
    assert os.path.isfile(os.path.join(model, "config.json")) and f"`{model}`" in report
    assert "5 step(s) ran" in report

    again = asyncio.run(run())
    assert again.state is not None and again.state.is_completed(), f"{again.state}\n{worker_log()}"
    children, report = asyncio.run(_build_run_view(ui["url"], again.id))
    assert children == [] and "nothing to do" in report


def test_ui_stops_everything_on_sigterm(ui):
    """SIGTERM (what a service manager or `kill` sends) stops the server, both workers and whatever they
    started: nothing of the script's session is left (the fixture started it in a session of its own)."""
    proc, port = ui["proc"], ui["port"]
    assert _port_open(port)
    started = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(started) >= 3  # the script, the server, two workers (and their children)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=90)
    rest = proc.stdout.read()
    assert "stopped." in rest
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert not left, subprocess.run(["ps", "-o", "pid,pgid,args", "-p", ",".join(left)], capture_output=True,
                                    text=True).stdout
    assert not _port_open(port)
