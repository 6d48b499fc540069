"""Reading the files users hand us as configuration: preset-or-YAML configs and original `.pt` weights.

Shared by every stage that takes ``--config NAME|FILE.yaml`` (tokenizer, pretraining) and every importer
of the original NeuroLM/LaBraM checkpoints, so that each checks its input the same way and says what is
wrong in one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
import yaml
from neurolm.errors import ConfigError


def read_model_train_yaml(path: str, presets: Iterable[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``model:`` and ``train:`` sections of a config file (each a dict, maybe empty).

    ConfigError when ``path`` is neither one of ``presets`` nor a file, is not YAML, or has other
    top-level keys.
    """
    if not os.path.exists(path):
        raise ConfigError(f"--config {path!r} is neither a preset {sorted(presets)} nor an existing file")
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) - {"model", "train"}:
        raise ConfigError(f"{path}: expected top-level keys 'model' and/or 'train'")
    return dict(doc.get("model") or {}), dict(doc.get("train") or {})


def load_original_checkpoint(path: str) -> dict[str, Any]:
    """An original ``.pt`` file (a state dict, or a resume dict with ``model``), read without unpickling code.

    ``torch.load(weights_only=True)``: tensors and plain containers only, so an untrusted file cannot
    run code. ConfigError when the file is missing, unsafe or not a dict.
    """
    if not os.path.exists(path):
        raise ConfigError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any reason the safe loader refuses: one line
        raise ConfigError(f"{path} cannot be loaded safely (weights_only=True): {exc}") from exc
    if not isinstance(obj, dict):
        raise ConfigError(f"{path}: expected a state dict or a resume dict with key 'model'")
    return obj
