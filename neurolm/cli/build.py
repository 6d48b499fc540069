"""``neurolm build CONFIG.yaml``: every stage, in order, only where lineage says it is needed.

The config (``configs/demo.yaml``, ``configs/paper.yaml``) names the inputs, each stage's params
and the output root. ``--dry-run`` prints the plan (which steps run and why) and runs nothing;
``--local`` runs the stages in this process without Prefect (same steps, same outputs, no UI).
The same command again skips every step that is up to date and says so.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("build", help="build everything a build config names (skips what is up to date)",
                              description=__doc__.splitlines()[0])
    p.add_argument("config", metavar="CONFIG.yaml", help="build config (e.g. configs/demo.yaml)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (which steps run and why); run nothing")
    p.add_argument("--force", action="append", default=[], metavar="STEP",
                   help="run this step or stage even when up to date (repeatable)")
    p.add_argument("--local", action="store_true", help="run the stages in this process, without Prefect")
    p.add_argument("--json", action="store_true", help="print the plan or the result as JSON")
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from neurolm.build.config import BuildParams, load_config
    from neurolm.build.report import plan_text, result_text
    from neurolm.build.run import dry_run, run_build

    params = BuildParams(config=args.config, force=tuple(args.force), dry_run=args.dry_run)
    config = load_config(params.config)  # a bad config: one message per problem, exit 2
    if args.dry_run:
        decisions = dry_run(config, params.force)
        if args.json:
            print(json.dumps([{"step": d.step, "stage": d.stage, "run": d.run, "reason": d.reason, "key": d.key}
                              for d in decisions], indent=1))
        else:
            for note in config.notes:
                print(note)
            print(plan_text(decisions, config.outputs.root))
        return 0
    say = (lambda _line: None) if args.json else (lambda line: print(line, flush=True))
    if args.local:
        result = run_build(config, force=params.force, log=say, owner=f"neurolm build {config.name} (local)")
    else:
        from flows.build import run_build_flow

        def on_event(ev: dict) -> None:
            if ev["event"] == "step":
                say(f"== {ev['step']}: {'runs' if ev['action'] == 'run' else 'skipped'}: {ev['reason']}")

        result = run_build_flow(params, on_event=on_event)
    print(json.dumps(result, indent=1, default=str) if args.json else result_text(result))
    return 0
