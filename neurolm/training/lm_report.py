"""The parts of an LM stage's run report that pretraining and instruction tuning draw the same way.

The figure is a ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot: no global state, safe in
worker threads): a loss panel (train losses per step) and a metric panel, which the stage fills. The
markdown embeds the PNG as a ``data:image/png;base64`` URI, so the Prefect UI shows the curves inside
the artifact (a ``file://`` link would point at the worker's disk).
"""

from __future__ import annotations

import base64
import io
from typing import Any


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def loss_figure(history: list[dict], train_keys: tuple[tuple[str, str], ...]):
    """(figure, loss axes, metric axes), the loss axes (cross-entropy per step) holding each ``(key, label)`` of
    ``train_keys``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), dpi=90)
    FigureCanvasAgg(fig)
    ax_loss, ax_metric = fig.subplots(1, 2)
    steps = [h["step"] for h in history]
    for key, label in train_keys:
        if history and key in history[0]:
            ax_loss.plot(steps, [h.get(key, float("nan")) for h in history], label=label, lw=1)
    ax_loss.set(xlabel="step", ylabel="cross-entropy (nats)", title="loss")
    return fig, ax_loss, ax_metric


def figure_png(fig) -> bytes:
    """Legends on every axes, tight layout, PNG bytes."""
    for ax in fig.axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def head_lines(summary: dict[str, Any], title: str, model: str, detail: str = "") -> list[str]:
    """The report's opening markdown lines: title, run folder, model folder (``model``: what it is), steps
    (``detail``: the stage's settings, inserted before the throughput)."""
    return [f"# {title} `{summary['config']}` ({summary['input_mode']} mode)", "",
            f"- run folder: `{summary['run_dir']}`", f"- {model}: `{summary['model_dir']}`",
            f"- steps: {summary['steps']} ({summary['epochs']:.2f} epochs), {detail}"
            f"{summary.get('tokens_per_s') or 0:,.0f} tokens/s, {summary.get('wall_s', 0):.1f} s this run"]


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def lineage_and_curves(summary: dict[str, Any], png: bytes | None) -> list[str]:
    """The report's closing markdown lines: the lineage as a list, then the curves (embedded)."""
    lines = ["", "## Lineage", ""]
    for k, v in (summary.get("lineage") or {}).items():
        lines.append(f"- **{k}**: `{_fmt(v)}`")
    if png is not None:
        lines += ["", "## Curves", "", f"![loss and accuracy curves]({data_uri(png)})"]
    return lines
