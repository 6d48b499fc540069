"""The tokenizer-training stage as library calls: :func:`prepare` (every check, before any work) and
:func:`train_tokenizer` (train, report, summary with ``outputs``); the Prefect flow only wires them.

Preparing fails early and the same way wherever a run starts: an unknown
config, a missing store, a store without training windows, an output directory
holding a different model's checkpoints, an unavailable device. The run's report
(loss-curve PNG + metrics markdown) is written next to the checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from neurolm.errors import ConfigError
from neurolm.outputs import checkpoint_outputs
from neurolm.tokenizer.config import TokenizerConfig, TrainConfig, load_configs
from neurolm.tokenizer.data import StoreSampleDataset
from neurolm.tokenizer.metrics import REPORT_COLS, REPORT_PANELS
from neurolm.tokenizer.params import TrainTokenizerParams
from neurolm.tokenizer.train import train
from neurolm.training import metrics as training_metrics
from neurolm.training import resolve_device
from storage import checkpoints, fs


def _quiet(*_args, **_kwargs) -> None:
    return None


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
    resolve_device(device, 0)
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


def prepare(params: TrainTokenizerParams) -> PreparedRun:
    """:func:`prepare_run` for a stage's params: the one preparation of a run."""
    return prepare_run(params.store, params.out, params.config, steps=params.steps, batch_size=params.batch_size,
                       device=params.device, resume=params.resume, split=params.split, version=params.version,
                       num_workers=params.num_workers, seed=params.seed)


def train_tokenizer(params: TrainTokenizerParams, run: PreparedRun | None = None, *,
                    log: Callable[[str], None] = _quiet, emit: Callable[[dict], None] = _quiet) -> dict:
    """Train (or resume) the tokenizer for ``params``, write its report; returns the run summary.

    ``run``: the run already prepared by :func:`prepare` (prepared here when None).
    Events: ``prepared`` (what will run), ``log`` (each metrics line), ``step``.
    The summary's ``outputs`` (checkpoint, its sha256, the config hash) are what
    the token-corpus stage takes; ``history`` and ``lineage`` feed reports.
    """
    run = run if run is not None else prepare(params)
    emit({"event": "prepared", "config": run.cfg.name, "config_hash": run.cfg.config_hash(),
          "windows": len(run.dataset), "split": params.split, "store_url": run.lineage["store_url"],
          "store_version": run.lineage["store_version"], "steps": run.tcfg.steps, "out": run.out})

    def on_log(line: dict) -> None:
        log(f"step {line['step']}: " + str({k: round(v, 4) for k, v in line.items() if isinstance(v, float)}))
        emit({"event": "log", **line})

    res = train(run.cfg, run.tcfg, run.dataset, run.out, device=run.device, resume=params.resume,
                lineage=run.lineage, text_token_file=params.text_tokens, on_log=on_log,
                on_step=lambda s, n: emit({"event": "step", "step": s, "total": n}))
    png, md = write_report(res.history, run.out)
    sha = checkpoints.checkpoint_sha256(run.out)
    config_hash = run.cfg.config_hash()
    return {"steps": res.steps, "seconds": res.seconds, "patches": res.patches, "checkpoint": res.checkpoint,
            "config_hash": config_hash, "config": run.cfg.name, "weights_sha256": sha, "loss_curve": png,
            "out": run.out, "final": res.history[-1] if res.history else {}, "history": res.history,
            "metrics_markdown": md, "lineage": run.lineage,
            "outputs": checkpoint_outputs(res.checkpoint or run.out, sha, config_hash)}


def write_report(history: list[dict], out: str) -> tuple[str | None, str]:
    """Loss-curve PNG and a metrics markdown table in ``out`` (local dirs); returns (png path, markdown)."""
    return training_metrics.write_report(history, out, REPORT_COLS, REPORT_PANELS)


def metrics_markdown(history: list[dict], max_rows: int = 20) -> str:
    return training_metrics.metrics_markdown(history, REPORT_COLS, max_rows)
