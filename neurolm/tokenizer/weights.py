"""Loading tokenizers: our checkpoints and the published NeuroLM ``VQ.pt``.

Our checkpoints (see :mod:`storage.checkpoints`) carry the model config in the
safetensors metadata, so a weights file alone is enough to rebuild the model and
a config mismatch is caught by hash, not by a shape error deep in torch.

The published ``VQ.pt`` is a training resume dict (``model``, ``optimizer``, ...)
of a ``torch.compile``d ``VQ_Align``. Its keys (``_orig_mod.VQ.encoder.*``,
``VQ.decoder_freq.*``, ``VQ.decoder_raw.*``, ``VQ.quantize.embedding.*``,
``domain_classifier.*``, ``wte.weight``) use the same names as our modules, so
importing is: load with ``weights_only=True``, strip wrapper prefixes, drop the
frozen GPT-2 table, take sizes from shapes and heads from the stored
``encoder_args``/``decoder_args``, load, report. The encoder it was trained with is
bidirectional with a plain GroupNorm stem, hence ``encoder_attention="full"`` and
``conv_norm="reference"``; ``tests/test_tokenizer_reference.py`` checks features and
codes against an independent re-typed forward of the original.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass

import torch

from neurolm.config_files import load_original_checkpoint
from neurolm.errors import ConfigError, StoreError
from neurolm.tokenizer.config import TokenizerConfig, preset
from neurolm.tokenizer.vq import VQTokenizer
from storage import checkpoints, fs

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
    fields = json.loads(meta["tokenizer_config"])
    legacy = "conv_norm" not in fields  # written before the field existed: trained with the padding-free norm
    cfg = TokenizerConfig(**{**fields, "conv_norm": "valid-patches"} if legacy else fields)
    expect = cfg.legacy_config_hash() if legacy else cfg.config_hash()
    if meta.get("config_hash") not in (None, expect):
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


def _shape_fields(sd: dict[str, torch.Tensor]) -> dict:
    """Every size a published-layout state dict shows by its tensor shapes."""
    try:
        cb = sd["VQ.quantize.embedding.weight"]
        return dict(
            d_model=sd["VQ.encoder.pos_embed.weight"].shape[1],
            n_enc_layers=1 + max(int(k.split(".")[3]) for k in sd if k.startswith("VQ.encoder.blocks.")),
            n_dec_layers=1 + max(int(k.split(".")[3]) for k in sd if k.startswith("VQ.decoder_freq.blocks.")),
            codebook_size=cb.shape[0], code_dim=cb.shape[1],
            conv_out_chans=sd["VQ.encoder.patch_embed.conv1.weight"].shape[0],
            pos_rows=sd["VQ.encoder.pos_embed.weight"].shape[0],
            time_rows=sd["VQ.encoder.time_embed.weight"].shape[0],
            freq_bins=sd["VQ.decode_task_layer_freq.2.weight"].shape[0],
            patch_size=sd["VQ.decode_task_layer_raw.2.weight"].shape[0],
            domain_hidden=sd["domain_classifier.0.weight"].shape[0],
        )
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(f"not a NeuroLM VQ state dict: cannot find {exc}") from exc


def _stored_args(obj: dict) -> tuple[dict | None, dict | None]:
    """(encoder args, decoder args) of an original resume dict: ``encoder_args``/``decoder_args``
    (what ``train_vq.py`` saves), else ``model_args`` as the encoder's; None where absent."""
    enc, dec = obj.get("encoder_args"), obj.get("decoder_args")
    if enc is None and dec is None:
        enc = obj.get("model_args")
    return (enc if isinstance(enc, dict) else None), (dec if isinstance(dec, dict) else None)


def _args_fields(enc: dict | None, dec: dict | None, shapes: dict, where: str) -> dict:
    """Config fields from the stored ``NTConfig`` args, checked against the tensor shapes."""
    out: dict = {}
    for name, args, layers in (("encoder_args", enc, "n_enc_layers"), ("decoder_args", dec, "n_dec_layers")):
        if args is None:
            continue
        if args.get("bias"):
            raise ConfigError(f"{where}: {name} has bias=True; the NeuroLM tokenizer (and this one) has no biases")
        for key, field in (("n_embd", "d_model"), ("n_layer", layers)):
            if key in args and int(args[key]) != shapes[field]:
                raise ConfigError(f"{where}: {name}.{key}={args[key]} but the weights have {field}={shapes[field]}")
        if "n_head" in args:
            if "n_heads" in out and out["n_heads"] != int(args["n_head"]):
                raise ConfigError(f"{where}: encoder n_head={out['n_heads']} and decoder n_head={args['n_head']} "
                                  "differ; one n_heads is supported")
            out["n_heads"] = int(args["n_head"])
    if enc is not None:
        if "block_size" in enc:
            out["max_tokens"] = int(enc["block_size"])
        if "out_chans" in enc and int(enc["out_chans"]) != shapes["conv_out_chans"]:
            raise ConfigError(f"{where}: encoder_args.out_chans={enc['out_chans']} but conv1 has "
                              f"{shapes['conv_out_chans']} channels")
    return out


def _guess_heads(d: int) -> int:
    return 12 if d % 12 == 0 else max(h for h in (8, 4, 2, 1) if d % h == 0)


def infer_config(sd: dict[str, torch.Tensor], args: tuple[dict | None, dict | None] = (None, None),
                 where: str = "state dict", **overrides) -> TokenizerConfig:
    """Architecture of a published-layout state dict: sizes from tensor shapes, ``n_heads`` and
    ``max_tokens`` from the checkpoint's stored args (``encoder_args``/``decoder_args``).

    Only when the args are absent is ``n_heads`` guessed from the width, with a warning
    (shapes cannot tell heads apart: a wrong guess gives wrong features without any error).
    ``overrides`` win over both. Imported models use the original's conv-stem norm
    (``conv_norm="reference"``) and full attention unless overridden.
    """
    shapes = _shape_fields(sd)
    fields = {**shapes, **_args_fields(*args, shapes, where)}
    if "n_heads" not in fields and "n_heads" not in overrides:
        fields["n_heads"] = _guess_heads(shapes["d_model"])
        warnings.warn(f"{where} stores no encoder_args/decoder_args/model_args: n_heads={fields['n_heads']} is "
                      f"guessed from d_model={shapes['d_model']}; pass n_heads= if it was trained otherwise",
                      UserWarning, stacklevel=3)
    kw = {"encoder_attention": "full", "conv_norm": "reference", "text_embedding": "gpt2", **fields, **overrides}
    try:
        return preset("base", **kw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def import_published(path: str, device: str = "cpu", **overrides) -> tuple[VQTokenizer, ImportReport]:
    """The original ``VQ.pt`` (or its bare state dict) → our model in eval mode, plus a key report.

    Sizes come from the tensors, ``n_heads`` from the stored ``encoder_args``/``decoder_args``
    (see :func:`infer_config`); ``overrides`` (e.g. ``n_heads``, ``conv_norm``) fix the rest.
    Raises ConfigError when weights the model needs are missing or shapes do not fit.
    """
    obj = load_original_checkpoint(path)
    sd = obj.get("model", obj)
    if not isinstance(sd, dict):
        raise ConfigError(f"{path}: expected a state dict or a resume dict with key 'model'")
    sd = strip_prefixes(sd)
    args = _stored_args(obj) if "model" in obj else (None, None)
    cfg = infer_config(sd, args, path, **overrides)
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


def published_args(cfg: TokenizerConfig) -> dict[str, dict]:
    """``encoder_args``/``decoder_args`` as the original ``train_vq.py`` stores them beside the weights."""
    common = dict(n_head=cfg.n_heads, n_embd=cfg.d_model, block_size=cfg.max_tokens, bias=False, dropout=0.0,
                  num_classes=0)
    return {"encoder_args": dict(common, n_layer=cfg.n_enc_layers, in_chans=1, out_chans=cfg.conv_out_chans),
            "decoder_args": dict(common, n_layer=cfg.n_dec_layers, in_chans=cfg.code_dim)}


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
        ckpt = checkpoints.load(path)  # a checkpoint directory, or a run's newest good checkpoint
        meta, weights = ckpt.metadata, ckpt.weights
    model = VQTokenizer(config_from_metadata(meta, path))
    model.load_state_dict(weights, strict=True)
    return model.to(device).eval()
