"""Everything a tokenizer training run needs, resolved and checked before any work.

Shared by the CLI and the Prefect flow so both fail the same way, early: an
unknown config, a missing store, a store without training windows, an output
directory holding a different model's checkpoints, an unavailable device.
Also writes the run's report (loss-curve PNG + metrics markdown) next to the checkpoints.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from neurolm.errors import ConfigError
from neurolm.tokenizer.config import TokenizerConfig, TrainConfig, load_configs
from neurolm.tokenizer.data import StoreSampleDataset
from neurolm.tokenizer.metrics import LOSS_KEYS
from neurolm.tokenizer.train import _device
from storage import checkpoints, fs


@dataclass(frozen=True)
class PreparedRun:
    cfg: TokenizerConfig
    tcfg: TrainConfig
    dataset: StoreSampleDataset
    lineage: dict
    out: str
    device: str


def prepare_run(store: str, out: str, config: str = "tiny", *, steps: int | None = None,
                batch_size: int | None = None, device: str = "cpu", resume: bool = True, split: str = "train",
                version: str | None = None, num_workers: int | None = None, seed: int | None = None) -> PreparedRun:
    """Resolve configs, open the store's windows, check the output dir; raises before any training."""
    for name, v in (("--steps", steps), ("--batch-size", batch_size)):
        if v is not None and v < 1:
            raise ConfigError(f"{name} must be ≥ 1, got {v}")
    cfg, tcfg = load_configs(config, steps=steps, batch_size=batch_size, num_workers=num_workers, seed=seed)
    _device(device, 0)
    ds = StoreSampleDataset(store, split=split, version=version, max_tokens=cfg.max_tokens,
                            freq_bins=cfg.freq_bins, time_rows=cfg.time_rows)
    out = fs.normalize_url(out)
    fs.check_writable(out)
    ckpt = checkpoints.list_checkpoints(out)
    if ckpt and not resume:
        raise ConfigError(f"{out} already holds checkpoints (latest step {ckpt[-1][0]}); "
                          "use --resume or a new --out")
    rows = "\n".join(f"{r},{s},{n}" for r, s, n in ds.rows).encode()
    lineage = {"store_url": fs.normalize_url(store), "store_version": ds.version_id,
               "vocab_version": ds.vocab_version, "split": split,
               "windows": len(ds), "windows_sha256": hashlib.sha256(rows).hexdigest()}
    return PreparedRun(cfg, tcfg, ds, lineage, out, device)


def write_report(history: list[dict], out: str) -> tuple[str | None, str]:
    """Loss-curve PNG and a metrics markdown table in ``out`` (local dirs); returns (png path, markdown)."""
    md = metrics_markdown(history)
    png = None
    if history and fs.is_local(out):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
        steps = [h["step"] for h in history]
        for k in LOSS_KEYS:
            if k in history[0]:
                ax.plot(steps, [h.get(k, float("nan")) for h in history], label=k)
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.legend(fontsize=7), ax.set_title("tokenizer losses")
        ax2.plot(steps, [h.get("usage", 0.0) for h in history], label="codebook usage")
        ax2.set_xlabel("step"), ax2.set_ylim(0, 1.05), ax2.legend(fontsize=7), ax2.set_title("codebook")
        fig.tight_layout()
        png = os.path.join(out, "loss_curve.png")
        fig.savefig(png, dpi=90)
        plt.close(fig)
        with open(os.path.join(out, "metrics.md"), "w", encoding="utf-8") as f:
            f.write(md)
    return png, md


def metrics_markdown(history: list[dict], max_rows: int = 20) -> str:
    cols = ["step", "lr", *LOSS_KEYS, "usage", "perplexity", "dead", "reseeded"]
    cols = [c for c in cols if history and c in history[-1]]
    stride = max(1, -(-len(history) // max_rows))
    rows = history[::stride] + ([history[-1]] if history and (len(history) - 1) % stride else [])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"
