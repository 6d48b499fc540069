"""Saving and loading the stage-2 model in a layout other tools can read.

Layout of a model directory ``DIR``::

    DIR/config.json, DIR/model.safetensors   the GPT-2 backbone, written by transformers'
                                             ``save_pretrained``: ``GPT2Model.from_pretrained(DIR)``
                                             loads it with no neurolm code at all
    DIR/neurolm.safetensors                  our extra parts (lm_head, chan_embed, code_proj and
                                             codebook, or encode_transform_layer and the frozen
                                             tokenizer encoder); the LMConfig in its metadata
    DIR/neurolm_config.json                  the same LMConfig, readable, with its hash

Why two files and not a ``GPT2PreTrainedModel`` subclass: a user who only wants the fine-tuned
GPT-2 (e.g. to probe its text side) gets a stock checkpoint; the EEG parts stay next to it.
"""

from __future__ import annotations

import json
import os

import torch

from neurolm.errors import ConfigError, StoreError
from neurolm.lm.config import LMConfig
from neurolm.lm.model import NeuroLM

FORMAT = "neurolm-lm-v1"
EXTRA_FILE = "neurolm.safetensors"
CONFIG_FILE = "neurolm_config.json"


def lm_metadata(cfg: LMConfig) -> dict[str, str]:
    """safetensors metadata that makes a weights file self-describing."""
    return {"format": FORMAT, "lm_config": cfg.model_dump_json(), "config_hash": cfg.config_hash()}


def config_from_metadata(meta: dict[str, str], where: str) -> LMConfig:
    if meta.get("format") != FORMAT or "lm_config" not in meta:
        raise ConfigError(f"{where} is not a neurolm LM weights file (no lm_config metadata)")
    cfg = LMConfig(**json.loads(meta["lm_config"]))
    if meta.get("config_hash") not in (None, cfg.config_hash()):
        raise ConfigError(f"{where}: config hash {meta['config_hash']} does not match its config")
    return cfg


def extra_weights(model: NeuroLM) -> dict[str, torch.Tensor]:
    """Everything outside the backbone (parameters and persistent buffers), on CPU."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if not k.startswith("gpt.")}


def save_lm(model: NeuroLM, directory: str) -> str:
    """Write ``DIR`` as described in the module doc; returns ``directory``."""
    from safetensors.torch import save_file

    from transformers.utils import logging as hf_logging

    os.makedirs(directory, exist_ok=True)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar at every checkpoint is noise
    try:
        model.gpt.save_pretrained(directory)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    cfg = model.config
    save_file(extra_weights(model), os.path.join(directory, EXTRA_FILE), metadata=lm_metadata(cfg))
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump({"config_hash": cfg.config_hash(), "config": cfg.model_dump(mode="json")}, f, indent=1)
    return directory


def load_lm(directory: str, device: str = "cpu") -> NeuroLM:
    """A model saved by :func:`save_lm`, in eval mode; StoreError/ConfigError on foreign or broken dirs."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import GPT2Model

    extra = os.path.join(directory, EXTRA_FILE)
    if not os.path.exists(extra) or not os.path.exists(os.path.join(directory, "config.json")):
        raise StoreError(f"{directory} is not a neurolm LM directory (needs config.json and {EXTRA_FILE})")
    try:
        with safe_open(extra, framework="pt") as f:
            meta = f.metadata() or {}
        weights = load_file(extra)
    except Exception as exc:
        raise StoreError(f"{extra} is not a readable safetensors file: {exc}") from exc
    cfg = config_from_metadata(meta, extra)
    model = NeuroLM(cfg)
    backbone = GPT2Model.from_pretrained(directory, attn_implementation=cfg.attn_implementation,
                                         dtype=torch.float32)
    if backbone.config.n_embd != cfg.n_embd or backbone.config.n_layer != cfg.n_layer:
        raise ConfigError(f"{directory}: backbone config does not match {CONFIG_FILE}")
    model.gpt = backbone
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.startswith("gpt.")]
    if missing or unexpected:
        raise ConfigError(f"{extra}: missing {missing}, unexpected {list(unexpected)}")
    return model.to(device).eval()
