"""Run a build: each step in order, skipped when up to date, recorded when done.

The library part of ``neurolm build`` (no Prefect): :func:`run_build` takes a ``runner``
that runs one step's stage with its params and returns the stage's summary. The default,
:func:`run_locally`, calls the stage's library ``run`` (in-process, one item after another);
``flows/build.py`` passes one that runs each stage's flow as a subflow of the build's flow.

Crash safety is the stages': each commits its units atomically and a rerun continues from
them. The build adds one rule: a step is recorded in the build state only after it returned,
so a step killed midway runs again on the next build (and finds its committed units), while
every step recorded before it is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from neurolm.build.config import BuildConfig
from neurolm.build.plan import Decision, Step, decide, expand, fingerprint, key_material, plan, wire
from neurolm.errors import NeurolmError
from neurolm.stages import stage as get_stage
from storage import build_state
from storage.signal_store import SignalStore, store_lock

Runner = Callable[[Step, Any], dict]


def _quiet(*_a, **_k) -> None:
    return None


def run_synth(synth, log: Callable[[str], None] = _quiet) -> dict:
    """Write the generated inputs of ``synth`` (overwriting: the same seed writes the same recordings)."""
    from neurolm.datasets.synth import synth_dataset
    from neurolm.synth.corpus import synth_corpus

    folders = []
    if synth.corpus is not None:
        c = synth.corpus
        synth_corpus(c.out, n_recordings=c.recordings, formats=tuple(c.formats), minutes=c.minutes,
                     n_malformed=c.malformed, seed=c.seed, layout=c.layout)
        log(f"synth: {c.recordings} recordings + {c.malformed} malformed files in {c.out}")
        folders.append(c.out)
    for name, out in synth.datasets.items():
        os.makedirs(out, exist_ok=True)
        synth_dataset(name, out, seed=synth.seed)
        log(f"synth: {name} fixture in {out}")
        folders.append(out)
    return {"outputs": {"synth": folders[0] if folders else ""}, "folders": folders}


def run_locally(step: Step, params: Any, log: Callable[[str], None] = _quiet) -> dict:
    """Run one step in this process through its stage's library function (no Prefect, no Dask)."""
    if step.stage == "synth":
        return run_synth(params, log)
    fn = get_stage(step.stage).resolve("run")
    return fn(params, log=log)


def prepare_store(config: BuildConfig, log: Callable[[str], None] = _quiet) -> str:
    """Make the store version of the build's standardization config current; returns its id.

    Ingestion writes into the store's current version, so a changed ``standardize`` section
    lands in a new version (``v-<hash>``) and every recording is ingested again.
    """
    url = config.location("store")
    with store_lock(url, "build: store version"):
        store = SignalStore.open(url, create=True, config=config.standardize, make_current=True)
    log(f"store {url}: version {store.version_id} is current")
    return store.version_id


def dry_run(config: BuildConfig, force: tuple[str, ...] = ()) -> list[Decision]:
    """The plan: which steps would run and why (reads the build state and the input folders only)."""
    return plan(expand(config), build_state.read_state(config.outputs.root), force=force)


def _brief(summary: dict) -> dict:
    """The scalar fields of a stage summary (kept in the build state and the report)."""
    return {k: v for k, v in summary.items() if isinstance(v, str | int | float | bool) and len(str(v)) < 200}


def run_build(config: BuildConfig, runner: Runner | None = None, *, force: tuple[str, ...] = (),
              log: Callable[[str], None] = _quiet, emit: Callable[[dict], None] = _quiet,
              owner: str = "neurolm build") -> dict:
    """Run every step that is not up to date, in order; returns the build's result (steps, outputs).

    ``emit`` gets ``{"event": "step", "step", "action": "run"|"skip", "reason"}`` before each step
    and ``{"event": "step-done", ...}`` after each one that ran.
    """
    runner = runner or (lambda step, params: run_locally(step, params, log))
    root = config.outputs.root
    steps = expand(config)
    for note in config.notes:
        log(note)
    t0 = time.perf_counter()
    with build_state.build_lock(root, owner):
        state = build_state.read_state(root)
        keys: dict[str, str] = {}
        outputs: dict[str, dict] = {}
        done: list[dict] = []
        store_ready = False
        for step in steps:
            material = key_material(step, keys, {t: fingerprint(t) for t in step.trees})
            d = decide(step, material, state.get(step.name), force=step.name in force or step.stage in force)
            keys[step.name] = d.key
            emit({"event": "step", "step": step.name, "action": "run" if d.run else "skip", "reason": d.reason})
            if not d.run:
                log(f"{step.name}: skipped: {d.reason}")
                outputs[step.name] = dict(state[step.name]["outputs"])
                done.append({"step": step.name, "stage": step.stage, "action": "skip", "reason": d.reason,
                             "key": d.key, "outputs": outputs[step.name],
                             "summary": state[step.name].get("summary") or {}})
                continue
            log(f"{step.name}: runs: {d.reason}")
            if step.stage in ("ingest", "ingest-dataset") and not store_ready:
                prepare_store(config, log)
                store_ready = True
            params = wire(step, d.key, outputs)
            t1 = time.perf_counter()
            summary = runner(step, params)
            if not isinstance(summary, dict) or "outputs" not in summary:
                raise NeurolmError(f"build step {step.name}: the {step.stage} stage returned no `outputs`")
            outputs[step.name] = dict(summary["outputs"])
            rec = build_state.record_step(root, step.name, d.key, outputs[step.name], config=material,
                                          summary=_brief(summary))
            wall = round(time.perf_counter() - t1, 2)
            log(f"{step.name}: done in {wall:.1f} s")
            emit({"event": "step-done", "step": step.name, "wall_s": wall})
            done.append({"step": step.name, "stage": step.stage, "action": "run", "reason": d.reason, "key": d.key,
                         "outputs": outputs[step.name], "summary": rec["summary"], "wall_s": wall})
    ran = [d["step"] for d in done if d["action"] == "run"]
    return {"name": config.name, "root": root, "steps": done, "ran": ran, "nothing_to_do": not ran,
            "wall_s": round(time.perf_counter() - t0, 2),
            "locations": {k: config.location(k) for k in ("store", "tokenizer", "corpus", "labeled_corpus",
                                                          "pretrain", "tune")},
            "outputs": outputs}
