"""The build's plan and result in words: terminal text and the markdown artifact of the build's flow."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from neurolm.build.plan import Decision, describe_outputs
from neurolm.instruct.model_card import CARD_FILE, summary_table
from neurolm.markdown import md_code, md_text


def plan_text(decisions: Sequence[Decision], root: str) -> str:
    """``--dry-run``: one line per step, run or skip and why."""
    width = max((len(d.step) for d in decisions), default=10)
    lines = [f"build plan (state: {root}/build-state.json)"]
    for d in decisions:
        lines.append(f"  {d.step:<{width}}  {'RUN ' if d.run else 'skip'}  {d.reason}")
    n = sum(d.run for d in decisions)
    lines.append(f"{n} of {len(decisions)} steps would run" if n else "everything is up to date: nothing to do")
    return "\n".join(lines)


def result_text(result: dict) -> str:
    lines = [f"build {result['name']} under {result['root']}:"]
    for s in result["steps"]:
        took = f" ({s['wall_s']:.1f} s)" if "wall_s" in s else ""
        what = "ran" if s["action"] == "run" else "skipped"
        lines.append(f"  {s['step']}: {what}{took}: {s['reason']}")
    if result["nothing_to_do"]:
        lines.append("nothing to do: every step is up to date")
    else:
        lines.append(f"{len(result['ran'])} step(s) ran in {result['wall_s']:.1f} s")
    return "\n".join(lines)


def _link(url: str) -> str:
    return md_code(url)


def result_markdown(result: dict) -> str:
    """The build's final artifact: what ran, and where the store, corpora, checkpoints and model are."""
    out = [f"# Build {md_text(result['name'])}", "",
           f"Output root {_link(result['root'])}; "
           + ("nothing to do: every step was up to date." if result["nothing_to_do"]
              else f"{len(result['ran'])} step(s) ran in {result['wall_s']:.1f} s."), "",
           "| step | action | why | outputs |", "|---|---|---|---|"]
    for s in result["steps"]:
        took = f" ({s['wall_s']:.1f} s)" if "wall_s" in s else ""
        out.append(f"| {md_text(s['step'])} | {s['action']}{took} | {md_text(s['reason'])} | "
                   f"{md_text(describe_outputs(s['outputs']))} |")
    out += ["", "## Artifacts", ""]
    for step, o in result["outputs"].items():
        for k in ("store", "checkpoint", "corpus", "model", "pretrain_run", "evaluation", "report"):
            if o.get(k):
                extra = o.get({"store": "store_version", "corpus": "corpus_version",
                               "checkpoint": "checkpoint_sha256"}.get(k, ""), "")
                out.append(f"- **{md_text(step)}** {k}: {_link(o[k])}" + (f" ({md_code(extra)})" if extra else ""))
        card = os.path.join(o["model"], CARD_FILE) if o.get("model") else ""
        if card and os.path.isfile(card):
            out.append(f"- **{md_text(step)}** model card: {_link(card)}")
    for step, o in result["outputs"].items():
        results = _results(o.get("results"))
        if results:
            out += ["", f"## Evaluation ({md_text(step)})", "", *summary_table(results)]
    return "\n".join(out) + "\n"


def _results(path: str | None) -> list[dict]:
    """The per-task rows of an evaluation's ``results.json`` (none when it cannot be read)."""
    if not path:
        return []
    try:
        with open(path, encoding="utf-8") as f:
            return list(json.load(f).get("results") or [])
    except (OSError, ValueError, AttributeError):
        return []
