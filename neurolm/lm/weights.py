"""Importing the published NeuroLM-B/L/XL checkpoints (nanoGPT layout) into our model.

The original checkpoints are training resume dicts (``model``, ``optimizer``, ``model_args``,
``iter_num``, ``epoch``) of a ``torch.compile``d ``NeuroLM`` module. Key layout of ``model``
(after stripping ``_orig_mod.``/``module.``), STACK_FACTS.md:

    GPT2.transformer.wte.weight [50304, d]   → gpt.wte.weight
    GPT2.transformer.wpe.weight [1024, d]    → gpt.wpe.weight
    GPT2.transformer.h.N.*                   → gpt.h.N.*  (Linear weights of attn.c_attn, attn.c_proj,
                                               mlp.c_fc, mlp.c_proj transposed: HF uses Conv1D)
    GPT2.transformer.h.N.attn.bias           dropped (nanoGPT's causal-mask buffer)
    GPT2.transformer.ln_f.*                  → gpt.ln_f.*
    GPT2.lm_head.weight [58496, d]           → lm_head.weight
    pos_embed.weight [256, d]                → chan_embed.weight (the channel embedding)
    encode_transform_layer.0.* (L/XL only)   → encode_transform_layer.0.*
    tokenizer.*                              → tokenizer.* (the frozen VQ encoder; its keys equal
                                               VQ.pt's ``VQ.encoder.*`` without that prefix)

Everything is read with ``torch.load(weights_only=True)``: a checkpoint is never unpickled.
The model comes out in ``features`` mode with a bidirectional (``full``) encoder whose conv-stem
GroupNorms take statistics over the whole sample, padding included (``conv_norm="reference"``), as
trained: padded samples get the original's features too.
``VQ.pt`` (optional) supplies the codebook the stage-2 targets come from; its encoder must
equal the checkpoint's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from neurolm.config_files import load_original_checkpoint
from neurolm.errors import ConfigError
from neurolm.lm.config import LMConfig
from neurolm.lm.model import NeuroLM
from neurolm.tokenizer.config import preset as tokenizer_preset
from neurolm.lm.config import GPT2_INIT

_PREFIXES = ("_orig_mod.", "module.")
_TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_DROPPED_SUFFIXES = (".attn.bias", ".attn.masked_bias")


@dataclass(frozen=True)
class ImportReport:
    loaded: int
    dropped: tuple[str, ...]
    model_args: dict[str, Any] = field(default_factory=dict)
    iter_num: int | None = None
    epoch: int | None = None
    vq_checked: bool = False

    def summary(self) -> str:
        s = f"loaded {self.loaded} tensors, dropped {len(self.dropped)} mask buffers"
        if self.iter_num is not None:
            s += f"; trained {self.iter_num} iterations ({self.epoch} epochs)"
        if self.vq_checked:
            s += "; encoder matches VQ.pt"
        return s


def strip_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = v
    return out


def infer_config(sd: dict[str, torch.Tensor], model_args: dict[str, Any] | None = None,
                 attn_implementation: str = "sdpa", codebook_dim: int = 128) -> LMConfig:
    """The LMConfig of a (prefix-stripped) original state dict, from ``model_args`` and tensor shapes."""
    args = dict(model_args or {})
    try:
        wte = sd["GPT2.transformer.wte.weight"]
        wpe = sd["GPT2.transformer.wpe.weight"]
        head = sd["GPT2.lm_head.weight"]
        chan = sd["pos_embed.weight"]
        n_embd = wte.shape[1]
        n_layer = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("GPT2.transformer.h."))
        enc = {k[len("tokenizer."):]: v for k, v in sd.items() if k.startswith("tokenizer.")}
        enc_d = enc["pos_embed.weight"].shape[1]
        tok_fields = dict(
            d_model=enc_d, n_enc_layers=1 + max(int(k.split(".")[1]) for k in enc if k.startswith("blocks.")),
            conv_out_chans=enc["patch_embed.conv1.weight"].shape[0], pos_rows=enc["pos_embed.weight"].shape[0],
            time_rows=enc["time_embed.weight"].shape[0], codebook_size=head.shape[0] - wte.shape[0],
            code_dim=codebook_dim, encoder_attention="full", conv_norm="reference",
            n_heads=12 if enc_d % 12 == 0 else max(h for h in (8, 4, 2, 1) if enc_d % h == 0),
        )
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(f"not a NeuroLM stage-2 state dict: cannot find {exc}") from exc
    for name, want in (("n_embd", n_embd), ("n_layer", n_layer), ("vocab_size", wte.shape[0]),
                       ("block_size", wpe.shape[0])):
        if name in args and int(args[name]) != int(want):
            raise ConfigError(f"model_args[{name!r}]={args[name]} disagrees with the weights ({want})")
    if args.get("bias") is False:
        raise ConfigError("model_args say bias=False; GPT-2 checkpoints (and our backbone) have biases")
    n_head = int(args.get("n_head", n_embd // 64))
    has_proj = "encode_transform_layer.0.weight" in sd
    if has_proj != (enc_d != n_embd):
        raise ConfigError(f"encode_transform_layer {'present' if has_proj else 'absent'} but encoder width "
                          f"{enc_d} vs GPT width {n_embd}")
    try:
        return LMConfig(name="imported", n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=wpe.shape[0],
                        text_vocab=wte.shape[0], chan_rows=chan.shape[0], input_mode="features",
                        attn_implementation=attn_implementation,
                        tokenizer=tokenizer_preset("base", **tok_fields))
    except ValueError as exc:
        raise ConfigError(f"weights describe an invalid model: {exc}") from exc


def convert_state_dict(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """Original keys → ours (transposing the four Linear weights per block); → (ours, dropped keys)."""
    out, dropped = {}, []
    for k, v in sd.items():
        if k.endswith(_DROPPED_SUFFIXES) and k.startswith("GPT2.transformer.h."):
            dropped.append(k)
            continue
        if k.startswith("GPT2.transformer."):
            nk = "gpt." + k[len("GPT2.transformer."):]
            if nk.endswith(_TRANSPOSED):
                v = v.t()
        elif k == "GPT2.lm_head.weight":
            nk = "lm_head.weight"
        elif k == "pos_embed.weight":
            nk = "chan_embed.weight"
        else:
            nk = k  # tokenizer.*, encode_transform_layer.*
        out[nk] = v.contiguous()
    return out, tuple(dropped)


def _vq_codebook(vq_path: str, encoder: dict[str, torch.Tensor]) -> torch.Tensor:
    """The codebook of ``VQ.pt``, after checking its encoder equals the checkpoint's frozen encoder."""
    obj = load_original_checkpoint(vq_path)
    vq = strip_prefixes(obj.get("model", obj))
    prefix = "VQ.encoder."
    theirs = {k[len(prefix):]: v for k, v in vq.items() if k.startswith(prefix)}
    if set(theirs) != set(encoder):
        raise ConfigError(f"{vq_path}: its encoder keys differ from the checkpoint's tokenizer.* keys")
    bad = [k for k in encoder if not torch.equal(encoder[k], theirs[k])]
    if bad:
        raise ConfigError(f"{vq_path} is not the tokenizer of this checkpoint: {len(bad)} encoder tensors differ "
                          f"(e.g. {bad[0]})")
    try:
        return vq["VQ.quantize.embedding.weight"].float()
    except KeyError as exc:
        raise ConfigError(f"{vq_path} has no codebook (VQ.quantize.embedding.weight)") from exc


def import_published(path: str, vq_path: str | None = None, attn_implementation: str = "sdpa",
                     device: str = "cpu") -> tuple[NeuroLM, ImportReport, torch.Tensor | None]:
    """An original NeuroLM-B/L/XL checkpoint → (our model in features mode, eval; report; VQ codebook or None)."""
    obj = load_original_checkpoint(path)
    sd = obj.get("model", obj)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConfigError(f"{path}: 'model' is not a state dict of tensors")
    sd = strip_prefixes(sd)
    model_args = obj.get("model_args") if isinstance(obj.get("model_args"), dict) else {}
    codebook = None
    if vq_path is not None:
        enc = {k[len("tokenizer."):]: v for k, v in sd.items() if k.startswith("tokenizer.")}
        codebook = _vq_codebook(vq_path, enc)
    cfg = infer_config(sd, model_args, attn_implementation, codebook.shape[1] if codebook is not None else 128)
    if codebook is not None and codebook.shape[0] != cfg.codebook_size:
        raise ConfigError(f"VQ codebook has {codebook.shape[0]} codes, the output head {cfg.codebook_size}")
    ours, dropped = convert_state_dict(sd)
    model = NeuroLM(cfg)
    try:
        res = model.load_state_dict(ours, strict=False)
    except RuntimeError as exc:
        raise ConfigError(f"{path}: shapes do not fit the inferred config: {exc}") from exc
    if res.missing_keys or res.unexpected_keys:
        raise ConfigError(f"{path}: missing {list(res.missing_keys)}; unexpected {list(res.unexpected_keys)}")
    report = ImportReport(loaded=len(ours), dropped=dropped, model_args=dict(model_args),
                          iter_num=_int_or_none(obj.get("iter_num")), epoch=_int_or_none(obj.get("epoch")),
                          vq_checked=codebook is not None)
    return model.to(device).eval(), report, codebook


def _int_or_none(v: Any) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def init_from_gpt2(cfg: LMConfig, source: str | None = None, seed: int = 0) -> NeuroLM:
    """A fresh stage-2 model whose backbone starts from pretrained GPT-2, as the original (reference §3.1).

    ``source``: a transformers name (``gpt2``, ``gpt2-medium``, ``gpt2-xl``; needs the HF cache
    or network) or a local ``save_pretrained`` directory; default: the preset's GPT-2 size.
    The 50,257-row table is enlarged to ``cfg.text_vocab`` rows with new rows N(0, 1); the head's
    rows 0-50256 are GPT-2's (tied) output embedding, the others PyTorch's default Linear init.
    """
    from transformers import GPT2LMHeadModel


    source = source or GPT2_INIT.get(cfg.name)
    if source is None:
        raise ConfigError(f"no GPT-2 checkpoint to start {cfg.name!r} from; pass source=")
    try:
        hf = GPT2LMHeadModel.from_pretrained(source, dtype=torch.float32)
    except Exception as exc:
        raise ConfigError(f"cannot load GPT-2 from {source!r} (HF cache, network or directory): {exc}") from exc
    hc = hf.config
    if (hc.n_embd, hc.n_layer, hc.n_head) != (cfg.n_embd, cfg.n_layer, cfg.n_head) or hc.n_positions > cfg.block_size:
        raise ConfigError(f"{source}: GPT-2 {hc.n_layer}x{hc.n_embd} ({hc.n_head} heads) does not fit config "
                          f"{cfg.name} ({cfg.n_layer}x{cfg.n_embd}, {cfg.n_head} heads)")
    torch.manual_seed(seed)
    model = NeuroLM(cfg)
    src = hf.transformer.state_dict()
    n_text = src["wte.weight"].shape[0]
    if n_text > cfg.text_vocab:
        raise ConfigError(f"{source}: {n_text} text tokens do not fit the {cfg.text_vocab}-row table")
    with torch.no_grad():
        wte = torch.randn(cfg.text_vocab, cfg.n_embd)
        wte[:n_text] = src["wte.weight"]
        src["wte.weight"] = wte
        wpe = model.gpt.wpe.weight.detach().clone()
        wpe[: src["wpe.weight"].shape[0]] = src["wpe.weight"]
        src["wpe.weight"] = wpe
        res = model.gpt.load_state_dict(src, strict=False)
        if res.missing_keys or [k for k in res.unexpected_keys if not k.endswith(_DROPPED_SUFFIXES)]:
            raise ConfigError(f"{source}: missing {res.missing_keys}, unexpected {res.unexpected_keys}")
        head = torch.nn.Linear(cfg.n_embd, cfg.n_logits, bias=False)  # PyTorch default init for new rows
        head.weight[:n_text] = hf.lm_head.weight
        model.lm_head.weight.copy_(head.weight)
    return model
