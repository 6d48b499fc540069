"""Metrics reporting of a training run: when to log/save, the metrics table, the loss-curve figure.

A run's *history* is a list of log lines (dicts with ``step``, ``lr`` and the
stage's metrics), kept in the checkpoint so a resumed run reports the whole run.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from storage import fs


def due(step: int, every: int, total: int) -> bool:
    """Whether the work done *after* ``step`` (0-based) is a multiple of ``every`` or the run's last step."""
    return (step + 1) % every == 0 or step + 1 == total


@dataclass(frozen=True)
class Panel:
    """One plot of the loss-curve figure: these history keys against ``step``."""

    title: str
    keys: tuple[str, ...]
    ylabel: str = ""
    ylim: tuple[float, float] | None = None


def metrics_markdown(history: list[dict], cols: Sequence[str], max_rows: int = 20) -> str:
    """A markdown table of at most ``max_rows`` evenly spaced log lines (the last always shown)."""
    cols = [c for c in cols if history and c in history[-1]]
    stride = max(1, -(-len(history) // max_rows))
    rows = history[::stride] + ([history[-1]] if history and (len(history) - 1) % stride else [])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_report(history: list[dict], out: str, cols: Sequence[str],
                 panels: Sequence[Panel]) -> tuple[str | None, str]:
    """``loss_curve.png`` (one plot per panel) and ``metrics.md`` in ``out`` (local dirs only).

    Returns (png path or None, the markdown table).
    """
    md = metrics_markdown(history, cols)
    png = None
    if history and fs.is_local(out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
        steps = [h["step"] for h in history]
        for ax, panel in zip(axes[0], panels):
            for k in panel.keys:
                if k in history[0]:
                    ax.plot(steps, [h.get(k, float("nan")) for h in history], label=k)
            ax.set_xlabel("step"), ax.set_ylabel(panel.ylabel), ax.set_title(panel.title)
            if panel.ylim is not None:
                ax.set_ylim(*panel.ylim)
            ax.legend(fontsize=7)
        fig.tight_layout()
        png = os.path.join(out, "loss_curve.png")
        fig.savefig(png, dpi=90)
        plt.close(fig)
        with open(os.path.join(out, "metrics.md"), "w", encoding="utf-8") as f:
            f.write(md)
    return png, md
