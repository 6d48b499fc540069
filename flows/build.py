"""The build flow: one parent Prefect flow, each stage's own flow as its subflow.

The library (:func:`neurolm.build.run.run_build`) decides, from lineage, which steps run and
records each one when it is done; this flow gives it a runner that starts the stage's flow
(``neurolm.stages`` names it) as a subflow, so the UI shows the build as one parent run with
its stage runs (each with its own progress and report artifacts) under it, and adds the
build's plan and final artifact (links to the store, corpora, checkpoints and model).
A step that is up to date starts no subflow; the log says "skipped: up to date (...)".
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.runtime import RunEvents, cli_run, run_name
from neurolm.build.config import BuildParams, load_config
from neurolm.build.plan import Step
from neurolm.build.report import plan_text, result_markdown, result_text
from neurolm.build.run import dry_run, run_build, run_synth
from neurolm.stages import stage as get_stage

_events = RunEvents()  # step events for the CLI, in this process
_emit = _events.emit  # safe to reach from flow code: a RunEvents pickles empty


@task(name="synth", cache_policy=NO_CACHE, retries=0)
def synth_task(synth) -> dict:
    """Write the build's generated inputs."""
    return run_synth(synth, get_run_logger().info)


def run_stage_flow(step: Step, params) -> dict:
    """Run one step as the subflow of its stage (named by the stage's own run name)."""
    if step.stage == "synth":
        return synth_task(params)
    summary = get_stage(step.stage).resolve("flow")(params)
    return summary


@flow(name="neurolm-build", flow_run_name=run_name("build", "config"))
def build_flow(params: BuildParams) -> dict:
    """Build (or bring up to date) everything a build config names; returns the build's result."""
    logger = get_run_logger()
    config = load_config(params.config)
    plan = plan_text(dry_run(config, params.force), config.outputs.root)
    logger.info(plan)
    if params.dry_run:
        return {"plan": plan}
    result = run_build(config, run_stage_flow, force=params.force, log=logger.info, emit=_emit,
                       owner=f"build {config.name}")
    logger.info(result_text(result))
    create_markdown_artifact(result_markdown(result), key="neurolm-build-report",
                             description=f"build {config.name}")
    return result


def run_build_flow(params: BuildParams, on_event: Callable[[dict], None] | None = None) -> dict:
    """Check the config (errors before any server), then run :func:`build_flow` on the shared server."""
    load_config(params.config)
    with _events.listening(on_event):
        with cli_run("build"):
            return build_flow(params)
