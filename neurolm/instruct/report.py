"""The report of an instruction-tuning run: loss and answer-accuracy curves (PNG) and a markdown page.

Drawn on an Agg canvas without pyplot (no global state), embedded in the markdown as a data: URI so
the Prefect UI shows it (:mod:`neurolm.training.lm_report`, as the pretraining report).
"""

from __future__ import annotations

from typing import Any

from neurolm.training.lm_report import figure_png, head_lines, lineage_and_curves, loss_figure

_TRAIN_KEYS = (("loss_instr", "train instruction loss"), ("loss_text", "train text loss"))


def curves_png(history: list[dict], val_history: list[dict], baseline: dict[str, float] | None = None) -> bytes:
    """PNG: (left) train instruction/text loss per step and val instruction loss; (right) val answer accuracy
    per task, with each task's majority-class baseline dashed."""
    fig, ax_loss, ax_acc = loss_figure(history, _TRAIN_KEYS)
    vs = [v["step"] for v in val_history]
    if val_history:
        ax_loss.plot(vs, [v["loss"] for v in val_history], "o-", label="val instruction loss")
        tasks = sorted({t for v in val_history for t in v.get("answer_accuracy_per_task", {})})
        for t in tasks:
            line, = ax_acc.plot(vs, [v["answer_accuracy_per_task"].get(t, float("nan")) for v in val_history],
                                "o-", label=t)
            if baseline and t in baseline:
                ax_acc.axhline(baseline[t], ls="--", lw=0.8, c=line.get_color())
    ax_acc.set(xlabel="step", ylabel="accuracy", title="val answer accuracy (teacher forced; dashed: majority)",
               ylim=(0, 1.02))
    return figure_png(fig)


def report_markdown(summary: dict[str, Any], png: bytes | None) -> str:
    """The run report: outcome, val answer accuracy per task next to the majority baseline, lineage, curves."""
    val, base = summary.get("val") or {}, summary.get("baseline") or {}
    detail = f"text positions `{summary['positions']}`, task temperature {summary['temperature']}, "
    lines = head_lines(summary, "Instruction tuning", "tuned model (save_lm layout)", detail)
    lines += [f"- train samples per task: {summary.get('tasks')}", "",
              "## Validation (teacher-forced answer accuracy)", "",
              "| task | answer accuracy | majority baseline |", "|---|---|---|"]
    for t, a in (val.get("answer_accuracy_per_task") or {}).items():
        lines.append(f"| {t} | {a:.4f} | {base.get(t, float('nan')):.4f} |")
    if val:
        lines += ["", f"val instruction loss {val['loss']:.4f} over {val['samples']} samples"]
    if summary.get("evaluation") is None:
        lines += ["", "Task metrics: not computed in this run (`neurolm evaluate MODEL_DIR --corpus CORPUS`)."]
    lines += lineage_and_curves(summary, png)
    return "\n".join(lines) + "\n"
