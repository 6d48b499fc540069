"""The run report of a pretraining run: loss/accuracy curves (PNG) and a markdown page embedding them.

The figure and the markdown's lineage and curves sections are the shared LM-stage report's
(:mod:`neurolm.training.lm_report`: Agg canvas, no pyplot; the PNG embedded as a data: URI).
"""

from __future__ import annotations

from typing import Any

from neurolm.training.lm_report import data_uri, figure_png, head_lines, lineage_and_curves, loss_figure

__all__ = ["curves_png", "data_uri", "report_markdown"]

_TRAIN_KEYS = (("loss_eeg", "train next-code loss"), ("loss_text", "train text loss"))


def curves_png(history: list[dict], val_history: list[dict], baseline: dict[str, float] | None = None) -> bytes:
    """PNG bytes: (left) train EEG/text loss per step and val next-code loss per epoch, (right) val accuracy."""
    fig, ax_loss, ax_acc = loss_figure(history, _TRAIN_KEYS)
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
    ax_acc.set(xlabel="step", ylabel="accuracy", title="val next-code accuracy")
    return figure_png(fig)


def report_markdown(summary: dict[str, Any], png: bytes | None) -> str:
    """The run report: outcome, val metrics next to the unigram baseline, lineage, curves (embedded)."""
    final, base = summary.get("val") or {}, summary.get("baseline") or {}
    lines = head_lines(summary, "Pretraining", "model (save_pretrained layout)")
    lines += ["", "## Validation (next code, one second ahead)", "",
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
    lines += lineage_and_curves(summary, png)
    return "\n".join(lines) + "\n"
