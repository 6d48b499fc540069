"""Loading tokenizers: our checkpoints and the published NeuroLM ``VQ.pt``.

Our checkpoints (see :mod:`storage.checkpoints`) carry the model config in the
safetensors metadata, so a weights file alone is enough to rebuild the model and
a config mismatch is caught by hash, not by a shape error deep in torch.

The published ``VQ.pt`` is a training resume dict (``model``, ``optimizer``, ...)
of a ``torch.compile``d ``VQ_Align``. Its keys (``_orig_mod.VQ.encoder.*``,
``VQ.decoder_freq.*``, ``VQ.decoder_raw.*``, ``VQ.quantize.embedding.*``,
``domain_classifier.*``, ``wte.weight``) use the same names as our modules, so
importing is: load with ``weights_only=True``, strip wrapper prefixes, drop the
frozen GPT-2 table, infer the architecture from shapes, load, report.
The encoder it was trained with is bidirectional, hence ``encoder_attention="full"``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch

from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer.config import TokenizerConfig, preset
from neurolm.tokenizer.vq import VQTokenizer

FORMAT = "neurolm-tokenizer-v1"
_PREFIXES = ("_orig_mod.", "module.")
# Keys of the published layout that are not model weights here: the frozen GPT-2 table
# (rebuilt from config.text_embedding) and the quantizer's usage statistic.
IGNORED_KEYS = frozenset({"wte.weight", "VQ.quantize.cluster_size"})


@dataclass(frozen=True)
class ImportReport:
    loaded: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    ignored: tuple[str, ...]

    def summary(self) -> str:
        s = f"loaded {self.loaded} tensors; ignored {list(self.ignored)}"
        if self.missing:
            s += f"; MISSING {list(self.missing)}"
        if self.unexpected:
            s += f"; UNEXPECTED {list(self.unexpected)}"
        return s


def tokenizer_metadata(cfg: TokenizerConfig) -> dict[str, str]:
    """safetensors metadata that makes a weights file self-describing."""
    return {"format": FORMAT, "tokenizer_config": cfg.model_dump_json(), "config_hash": cfg.config_hash()}


def config_from_metadata(meta: dict[str, str], where: str) -> TokenizerConfig:
    if meta.get("format") != FORMAT or "tokenizer_config" not in meta:
        raise ConfigError(f"{where} is not a neurolm tokenizer weights file (no tokenizer_config metadata)")
    cfg = TokenizerConfig(**json.loads(meta["tokenizer_config"]))
    if meta.get("config_hash") not in (None, cfg.config_hash()):
        raise ConfigError(f"{where}: config hash {meta['config_hash']} does not match its config")
    return cfg


def model_weights(model: VQTokenizer) -> dict[str, torch.Tensor]:
    """What a checkpoint stores: the persistent state (parameters + EMA buffers)."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for p in _PREFIXES:
            while k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def infer_config(sd: dict[str, torch.Tensor], **overrides) -> TokenizerConfig:
    """Architecture of a published-layout state dict, from tensor shapes (base preset otherwise)."""
    try:
        cb = sd["VQ.quantize.embedding.weight"]
        d = sd["VQ.encoder.pos_embed.weight"].shape[1]
        enc = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("VQ.encoder.blocks."))
        dec = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("VQ.decoder_freq.blocks."))
        fields = dict(
            d_model=d, n_enc_layers=enc, n_dec_layers=dec, codebook_size=cb.shape[0], code_dim=cb.shape[1],
            conv_out_chans=sd["VQ.encoder.patch_embed.conv1.weight"].shape[0],
            pos_rows=sd["VQ.encoder.pos_embed.weight"].shape[0],
            time_rows=sd["VQ.encoder.time_embed.weight"].shape[0],
            freq_bins=sd["VQ.decode_task_layer_freq.2.weight"].shape[0],
            domain_hidden=sd["domain_classifier.0.weight"].shape[0],
        )
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(f"not a NeuroLM VQ state dict: cannot find {exc}") from exc
    n_heads = 12 if d % 12 == 0 else max(h for h in (8, 4, 2, 1) if d % h == 0)
    kw = {"encoder_attention": "full", "text_embedding": "gpt2", "n_heads": n_heads, **fields, **overrides}
    return preset("base", **kw)


def import_published(path: str, device: str = "cpu", **overrides) -> tuple[VQTokenizer, ImportReport]:
    """The original ``VQ.pt`` (or its bare state dict) → our model in eval mode, plus a key report.

    ``overrides`` (e.g. ``n_heads``) fix what shapes cannot tell. Raises ConfigError
    when weights the model needs are missing or shapes do not fit.
    """
    if not os.path.exists(path):
        raise ConfigError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"{path} cannot be loaded safely (weights_only=True): {exc}") from exc
    sd = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise ConfigError(f"{path}: expected a state dict or a resume dict with key 'model'")
    sd = strip_prefixes(sd)
    cfg = infer_config(sd, **overrides)
    model = VQTokenizer(cfg)
    ignored = tuple(sorted(k for k in sd if k in IGNORED_KEYS))
    wanted = {k: v for k, v in sd.items() if k not in IGNORED_KEYS}
    try:
        res = model.load_state_dict(wanted, strict=False)
    except RuntimeError as exc:
        raise ConfigError(f"{path}: shapes do not fit the inferred config: {exc}") from exc
    report = ImportReport(loaded=len(wanted) - len(res.unexpected_keys), missing=tuple(res.missing_keys),
                          unexpected=tuple(res.unexpected_keys), ignored=ignored)
    if report.missing:
        raise ConfigError(f"{path}: {report.summary()}")
    return model.to(device).eval(), report


def published_layout(model: VQTokenizer, wte: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Our weights under the original's key names (as a ``torch.compile``d ``VQ_Align`` saves them).

    Used to test the importer and to hand weights back to code written for the original.
    """
    sd = {f"_orig_mod.{k}": v for k, v in model_weights(model).items()}
    sd["_orig_mod.VQ.quantize.cluster_size"] = model.VQ.quantize.embedding.cluster_size.detach().clone()
    if wte is not None:
        sd["_orig_mod.wte.weight"] = wte
    return sd


def load_tokenizer(path: str, device: str = "cpu") -> VQTokenizer:
    """A tokenizer in eval mode from a run directory, a checkpoint directory or a weights file.

    Weights files: our ``model.safetensors`` or a published ``.pt``/``.pth``.
    """
    from safetensors.torch import load_file, safe_open

    from storage import checkpoints, fs

    path = os.fspath(path)
    if not fs.exists(path):
        raise StoreError(f"no tokenizer at {path}")
    if not fs.isdir(path):
        if path.endswith((".pt", ".pth")):
            return import_published(path, device)[0]
        try:
            with safe_open(path, framework="pt") as f:
                meta = f.metadata() or {}
            weights = load_file(path)
        except Exception as exc:
            raise StoreError(f"{path} is not a readable safetensors file: {exc}") from exc
    else:
        if fs.exists(fs.join(path, "manifest.json")):
            ckpt = checkpoints.load_checkpoint(path)
        else:
            ckpt = checkpoints.load_latest_good(path)
            if ckpt is None:
                raise StoreError(f"no checkpoint in {path}")
        meta, weights = ckpt.metadata, ckpt.weights
    model = VQTokenizer(config_from_metadata(meta, path))
    model.load_state_dict(weights, strict=True)
    return model.to(device).eval()
