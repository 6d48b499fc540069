"""The run report of a pretraining run: loss/accuracy curves (PNG) and a markdown page embedding them.

The figure is a ``matplotlib.figure.Figure`` drawn on an Agg canvas (no pyplot: no global state,
safe in worker threads). The markdown embeds the PNG as a ``data:image/png;base64`` URI, so the
Prefect UI shows the curves inside the artifact (a ``file://`` link would point at the worker's disk).
"""

from __future__ import annotations

import base64
import io
from typing import Any

_TRAIN_KEYS = (("loss_eeg", "train next-code loss"), ("loss_text", "train text loss"))


def curves_png(history: list[dict], val_history: list[dict], baseline: dict[str, float] | None = None) -> bytes:
    """PNG bytes: (left) train EEG/text loss per step and val next-code loss per epoch, (right) val accuracy."""
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
        ax_loss.plot(vs, [v["loss"] for v in val_history], "o-", label="val next-code loss")
        ax_acc.plot(vs, [v["accuracy"] for v in val_history], "o-", label="val next-code accuracy")
    if baseline:
        ax_loss.axhline(baseline["loss"], ls="--", c="grey", label="unigram baseline (val)")
        ax_acc.axhline(baseline["accuracy"], ls="--", c="grey", label="unigram baseline")
        if baseline.get("bigram"):
            ax_loss.axhline(baseline["bigram"]["loss"], ls=":", c="grey", label="bigram baseline (val)")
            ax_acc.axhline(baseline["bigram"]["accuracy"], ls=":", c="grey", label="bigram baseline")
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats)", title="loss")
    ax_acc.set(xlabel="step", ylabel="accuracy", title="val next-code accuracy")
    for ax in (ax_loss, ax_acc):
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def report_markdown(summary: dict[str, Any], png: bytes | None) -> str:
    """The run report: outcome, val metrics next to the unigram baseline, lineage, curves (embedded)."""
    final, base = summary.get("val") or {}, summary.get("baseline") or {}
    lines = [f"# Pretraining `{summary['config']}` ({summary['input_mode']} mode)", "",
             f"- run folder: `{summary['run_dir']}`", f"- model (save_pretrained layout): `{summary['model_dir']}`",
             f"- steps: {summary['steps']} ({summary['epochs']:.2f} epochs), "
             f"{summary.get('tokens_per_s') or 0:,.0f} tokens/s, {summary.get('wall_s', 0):.1f} s this run", "",
             "## Validation (next code, one second ahead)", "",
             "| | loss | accuracy | perplexity |", "|---|---|---|---|"]
    if final:
        lines.append(f"| model | {final['loss']:.4f} | {final['accuracy']:.4f} | {final['perplexity']:.1f} |")
    if base:
        lines.append(f"| unigram baseline | {base['loss']:.4f} | {base['accuracy']:.4f} | {base['perplexity']:.1f} |")
        big = base.get("bigram")
        if big:
            lines.append(f"| bigram baseline (the channel's current code) | {big['loss']:.4f} | {big['accuracy']:.4f} | "
                         f"{big['perplexity']:.1f} |")
    vs = summary.get("vs_unigram") or {}
    if "accuracy_ratio" in vs and "loss_gap" in vs:
        lines += ["", f"Model vs unigram: accuracy **{vs['accuracy_ratio']:.2f}×** the unigram's; loss gap "
                      f"(unigram − model) {vs['loss_gap']:+.3f} nats."]
    lines += ["", "## Lineage", ""]
    for k, v in (summary.get("lineage") or {}).items():
        lines.append(f"- **{k}**: `{_fmt(v)}`")
    if png is not None:
        lines += ["", "## Curves", "", f"![loss and accuracy curves]({data_uri(png)})"]
    return "\n".join(lines) + "\n"
