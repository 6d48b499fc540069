"""The report of an instruction-tuning run: loss and answer-accuracy curves (PNG) and a markdown page.

Drawn on an Agg canvas without pyplot (no global state), embedded in the markdown as a data: URI so
the Prefect UI shows it (as :mod:`neurolm.lm.report`).
"""

from __future__ import annotations

import io
from typing import Any

from neurolm.lm.report import data_uri

_TRAIN_KEYS = (("loss_instr", "train instruction loss"), ("loss_text", "train text loss"))


def curves_png(history: list[dict], val_history: list[dict], baseline: dict[str, float] | None = None) -> bytes:
    """PNG: (left) train instruction/text loss per step and val instruction loss; (right) val answer accuracy
    per task, with each task's majority-class baseline dashed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), dpi=90)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    steps = [h["step"] for h in history]
    for key, label in _TRAIN_KEYS:
        if history and key in history[0]:
            ax_loss.plot(steps, [h.get(key, float("nan")) for h in history], label=label, lw=1)
    vs = [v["step"] for v in val_history]
    if val_history:
        ax_loss.plot(vs, [v["loss"] for v in val_history], "o-", label="val instruction loss")
        tasks = sorted({t for v in val_history for t in v.get("answer_accuracy_per_task", {})})
        for t in tasks:
            line, = ax_acc.plot(vs, [v["answer_accuracy_per_task"].get(t, float("nan")) for v in val_history],
                                "o-", label=t)
            if baseline and t in baseline:
                ax_acc.axhline(baseline[t], ls="--", lw=0.8, c=line.get_color())
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats)", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="val answer accuracy (teacher forced; dashed: majority)",
               ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def report_markdown(summary: dict[str, Any], png: bytes | None) -> str:
    """The run report: outcome, val answer accuracy per task next to the majority baseline, lineage, curves."""
    val, base = summary.get("val") or {}, summary.get("baseline") or {}
    lines = [f"# Instruction tuning `{summary['config']}` ({summary['input_mode']} mode)", "",
             f"- run folder: `{summary['run_dir']}`", f"- tuned model (save_lm layout): `{summary['model_dir']}`",
             f"- steps: {summary['steps']} ({summary['epochs']:.2f} epochs), text positions "
             f"`{summary['positions']}`, task temperature {summary['temperature']}, "
             f"{summary.get('tokens_per_s') or 0:,.0f} tokens/s, {summary.get('wall_s', 0):.1f} s this run",
             f"- train samples per task: {summary.get('tasks')}", "",
             "## Validation (teacher-forced answer accuracy)", "",
             "| task | answer accuracy | majority baseline |", "|---|---|---|"]
    for t, a in (val.get("answer_accuracy_per_task") or {}).items():
        lines.append(f"| {t} | {a:.4f} | {base.get(t, float('nan')):.4f} |")
    if val:
        lines += ["", f"val instruction loss {val['loss']:.4f} over {val['samples']} samples"]
    if summary.get("evaluation") is None:
        lines += ["", "Task metrics: not computed in this run (`neurolm evaluate MODEL_DIR --corpus CORPUS`)."]
    lines += ["", "## Lineage", ""]
    for k, v in (summary.get("lineage") or {}).items():
        lines.append(f"- **{k}**: `{_fmt(v)}`")
    if png is not None:
        lines += ["", "## Curves", "", f"![loss and accuracy curves]({data_uri(png)})"]
    return "\n".join(lines) + "\n"
