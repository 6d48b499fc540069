"""`make demo`: the whole pipeline as one build, on generated data, on CPU, offline.

The main command is ``neurolm build configs/demo.yaml`` run from the demo folder (the config's
relative paths are taken from there). That build, one Prefect flow with a subflow per stage:

1. generates its inputs: 24 recordings in six formats + 5 malformed files, and the six labeled
   datasets' layouts (TUAB, TUEV, SEED, HMC, Workload, TUSL) with learnable synthetic labels;
2. ingests the archive and the six datasets into one signal store (Dask, quarantine with reasons);
3. trains the tiny tokenizer, tokenizes the archive (pretraining corpus) and every labeled window;
4. pretrains the tiny NeuroLM (stage 2), tunes it on all six tasks at once (stage 3), evaluates it.

Then the demo prints the evaluation table and asks the tuned model one question about one file
(``neurolm ask``). Every step is the command a user would type, run as a subprocess.

The folder is kept: a second ``make demo`` finds every step up to date, does no work and says
so (``make clean`` removes it). ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def _run(step: str, args: list[str], cwd: Path) -> None:
    cmd = [sys.executable, "-m", "neurolm", *args]
    print(f"\n=== {step}\n$ neurolm {shlex.join(args)}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=os.environ.copy(), cwd=cwd)
    if proc.returncode != 0:
        raise SystemExit(f"demo step failed ({step}): exit code {proc.returncode}")
    print(f"--- {step}: {time.perf_counter() - t0:.1f} s", flush=True)


def _tuned_model(root: Path) -> str:
    from storage.build_state import read_state

    state = read_state(str(root))
    model = ((state.get("tune") or {}).get("outputs") or {}).get("model")
    if not model:
        raise SystemExit(f"demo: the build recorded no tuned model under {root}")
    return model


def _print_table(root: Path) -> None:
    from storage.build_state import read_state

    evaluation = ((read_state(str(root)).get("evaluate") or {}).get("outputs") or {}).get("evaluation")
    table = Path(evaluation or "") / "tables.md"
    if not table.is_file():
        raise SystemExit(f"demo: no evaluation table at {table}")
    print(f"\n=== evaluation ({table})\n")
    print(table.read_text())


def _hmc_file(work: Path) -> str:
    files = sorted(glob.glob(str(work / "inputs" / "hmc" / "**" / "*.edf"), recursive=True))
    files = [f for f in files if "sleepscoring" not in os.path.basename(f)]
    if not files:
        raise SystemExit("demo: no generated HMC recording to ask about")
    return files[-1]


def _scored_stage(edf: str, start_s: float) -> str:
    """The stage the HMC scoring file gives the 30-s epoch at ``start_s`` of ``edf`` (what the answer should be)."""
    from neurolm.datasets.hmc import parse_scoring, stage_of

    scoring = edf[: -len(".edf")] + "_sleepscoring.txt"
    stages = [stage_of(a) for on, dur, a in parse_scoring(scoring) if dur == 30 and on == start_s]
    return f"{stages[0]} (from {os.path.basename(scoring)})" if stages else "not scored"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo", help="working folder (kept between runs)")
    parser.add_argument("--config", default=str(CONFIG), help="the build config (default: configs/demo.yaml)")
    parser.add_argument("--fresh", action="store_true", help="remove the working folder first")
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    work = Path(args.out).resolve()
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect_home"))
    config = str(Path(args.config).resolve())
    root = work / "build"

    t0 = time.perf_counter()
    _run("the plan", ["build", config, "--dry-run"], work)
    _run("the build: archive -> store -> tokenizer -> corpora -> pretrain -> tune -> evaluate", ["build", config], work)
    _print_table(root)
    question = "Question: Which sleep type does this EEG segment belong to?"
    edf = _hmc_file(work)
    _run("ask the tuned model about one recording",
         ["ask", edf, question, "--model", _tuned_model(root), "--start", "30"], work)
    print(f"the scorer's stage of this window: {_scored_stage(edf, 30.0)}")
    print(f"\nDemo finished in {time.perf_counter() - t0:.0f} s. Outputs under {work}.")
    print("Run `make demo` again: every step is up to date and nothing is redone.")
    print(f"See the flow runs: PREFECT_HOME={os.environ['PREFECT_HOME']} prefect flow-run ls   (or `make ui`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
