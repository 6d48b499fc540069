"""An independent re-typing of the ORIGINAL NeuroLM tokenizer's encode path (encoder + quantizer).

Written from NEUROLM_REFERENCE.md §2.1–2.2, not from ``neurolm``: it imports nothing
from the package and works on a raw state dict in the original's key layout
(``VQ.encoder.*``, ``VQ.quantize.embedding.weight`` ...), so comparing it with a model
imported by ``neurolm.tokenizer.weights`` checks the importer, the key names, the
config read from the stored args and the maths at once. Functional on purpose: no
module tree that could mirror ours.

What the original does, step by step (B samples, L patch tokens, P = 200 samples):

- TemporalConv on x [B, 1, L, P], each patch on its own row:
  Conv2d(1→C, (1,15), stride (1,8), pad (0,7)) → GroupNorm(4, C) → GELU,
  then twice Conv2d(C→C, (1,3), pad (0,1)) → GroupNorm(4, C) → GELU.
  The GroupNorm is a plain ``nn.GroupNorm`` over [B, C, L, T]: its statistics span
  every patch of the sample, **padding patches included**.
  Then rearrange 'B C L T -> B L (T C)' and Linear(T·C → d) → GELU.
- + pos_embed[ch] (Embedding(256, d), by channel) + time_embed[time] (Embedding(64, d), by second).
- GPT pre-LN blocks: x += c_proj(attn(ln_1(x))), x += mlp(ln_2(x)); LayerNorm eps 1e-5 without
  bias, Linears without bias, MLP 4× with exact GELU, SDPA with ``is_causal=False`` and the
  boolean key-padding mask ``input_mask.unsqueeze(1).repeat(1, L, 1).unsqueeze(1)`` [B, 1, L, L].
- fc_norm = LayerNorm(d, eps 1e-6) (with bias) on every token.
- encode_task_layer Linear(d, d) → Tanh → Linear(d, code_dim) in fp32 with autocast off,
  L2-normalise, then the nearest codebook row by L2 distance
  ``|z|² + |e|² − 2 z·e`` (argmin), codebook rows being unit vectors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ORIG_PREFIX = "_orig_mod."


def strip_orig_mod(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What ``train_vq.py`` does on resume: drop the ``torch.compile`` prefix."""
    return {(k[len(ORIG_PREFIX):] if k.startswith(ORIG_PREFIX) else k): v for k, v in sd.items()}


def _temporal_conv(sd: dict, p: str, x: torch.Tensor) -> torch.Tensor:
    h = x.unsqueeze(1)  # [B, 1, L, P]
    h = F.conv2d(h, sd[p + "conv1.weight"], sd[p + "conv1.bias"], stride=(1, 8), padding=(0, 7))
    h = F.gelu(F.group_norm(h, 4, sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-5))
    h = F.conv2d(h, sd[p + "conv2.weight"], sd[p + "conv2.bias"], padding=(0, 1))
    h = F.gelu(F.group_norm(h, 4, sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-5))
    h = F.conv2d(h, sd[p + "conv3.weight"], sd[p + "conv3.bias"], padding=(0, 1))
    h = F.gelu(F.group_norm(h, 4, sd[p + "norm3.weight"], sd[p + "norm3.bias"], eps=1e-5))
    b, c, n, t = h.shape
    h = torch.einsum("bcnt->bntc", h).reshape(b, n, t * c)  # 'B C NA T -> B NA (T C)'
    return F.gelu(F.linear(h, sd[p + "l.0.weight"], sd[p + "l.0.bias"]))


def _block(sd: dict, p: str, x: torch.Tensor, mask: torch.Tensor, n_head: int) -> torch.Tensor:
    b, n, d = x.shape
    h = F.layer_norm(x, (d,), sd[p + "ln_1.weight"], None, 1e-5)
    q, k, v = F.linear(h, sd[p + "attn.c_attn.weight"]).split(d, dim=2)
    q, k, v = (t.reshape(b, n, n_head, d // n_head).permute(0, 2, 1, 3) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False)
    x = x + F.linear(y.permute(0, 2, 1, 3).reshape(b, n, d), sd[p + "attn.c_proj.weight"])
    h = F.layer_norm(x, (d,), sd[p + "ln_2.weight"], None, 1e-5)
    return x + F.linear(F.gelu(F.linear(h, sd[p + "mlp.c_fc.weight"])), sd[p + "mlp.c_proj.weight"])


def encoder_features(sd: dict, encoder_args: dict, x: torch.Tensor, input_chans: torch.Tensor,
                     input_time: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
    """``VQ.encoder(x, chans, time, mask, return_all_tokens=True)`` → [B, L, d] (sd: prefix-free keys)."""
    p = "VQ.encoder."
    n = x.shape[1]
    mask = input_mask.bool().unsqueeze(1).repeat(1, n, 1).unsqueeze(1)  # [B, 1, L, L]
    h = _temporal_conv(sd, p + "patch_embed.", x.float())
    h = h + sd[p + "pos_embed.weight"][input_chans] + sd[p + "time_embed.weight"][input_time]
    for i in range(encoder_args["n_layer"]):
        h = _block(sd, f"{p}blocks.{i}.", h, mask, encoder_args["n_head"])
    return F.layer_norm(h, (h.shape[-1],), sd[p + "fc_norm.weight"], sd[p + "fc_norm.bias"], 1e-6)


def codebook_indices(sd: dict, features: torch.Tensor) -> torch.Tensor:
    """Projection in fp32, L2-normalise, nearest (L2) codebook entry → [B, L] codes (padding included)."""
    p = "VQ.encode_task_layer."
    with torch.autocast(device_type=features.device.type, enabled=False):
        z = F.linear(torch.tanh(F.linear(features.float(), sd[p + "0.weight"], sd[p + "0.bias"])),
                     sd[p + "2.weight"], sd[p + "2.bias"])
        z = F.normalize(z, p=2, dim=-1)
        flat = z.reshape(-1, z.shape[-1])
        e = sd["VQ.quantize.embedding.weight"]
        dist = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1) - 2 * torch.einsum("bd,nd->bn", flat, e)
        return dist.argmin(dim=1).reshape(z.shape[:2])


def _transformer_keys(prefix: str, d: int, n_layer: int, pos_rows: int, time_rows: int) -> dict[str, tuple]:
    keys: dict[str, tuple] = {prefix + "pos_embed.weight": (pos_rows, d), prefix + "time_embed.weight": (time_rows, d)}
    for i in range(n_layer):
        b = f"{prefix}blocks.{i}."
        keys.update({b + "ln_1.weight": (d,), b + "attn.c_attn.weight": (3 * d, d), b + "attn.c_proj.weight": (d, d),
                     b + "ln_2.weight": (d,), b + "mlp.c_fc.weight": (4 * d, d), b + "mlp.c_proj.weight": (d, 4 * d)})
    keys.update({prefix + "fc_norm.weight": (d,), prefix + "fc_norm.bias": (d,)})
    return keys


def original_state_dict(encoder_args: dict, decoder_args: dict, *, codebook_size: int, code_dim: int,
                        patch_size: int = 200, domain_hidden: int = 256, pos_rows: int = 256, time_rows: int = 64,
                        wte_rows: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random ``VQ_Align.state_dict()`` with every key the original saves (prefix-free), values
    scaled so every part of the forward matters (GroupNorm affine, embeddings, biases)."""
    d, c = encoder_args["n_embd"], encoder_args["out_chans"]
    t = (patch_size + 2 * 7 - 15) // 8 + 1
    shapes: dict[str, tuple] = {}
    e = "VQ.encoder.patch_embed."
    shapes.update({e + "conv1.weight": (c, 1, 1, 15), e + "conv1.bias": (c,)})
    for i in (2, 3):
        shapes.update({f"{e}conv{i}.weight": (c, c, 1, 3), f"{e}conv{i}.bias": (c,)})
    for i in (1, 2, 3):
        shapes.update({f"{e}norm{i}.weight": (c,), f"{e}norm{i}.bias": (c,)})
    shapes.update({e + "l.0.weight": (d, t * c), e + "l.0.bias": (d,)})
    shapes.update(_transformer_keys("VQ.encoder.", d, encoder_args["n_layer"], pos_rows, time_rows))
    din = decoder_args["in_chans"]
    for dec in ("VQ.decoder_freq.", "VQ.decoder_raw."):
        shapes.update({dec + "patch_embed.weight": (d, din), dec + "patch_embed.bias": (d,)})
        shapes.update(_transformer_keys(dec, d, decoder_args["n_layer"], pos_rows, time_rows))
    for head, out in (("encode_task_layer", code_dim), ("decode_task_layer_freq", patch_size // 2),
                      ("decode_task_layer_raw", patch_size)):
        shapes.update({f"VQ.{head}.0.weight": (d, d), f"VQ.{head}.0.bias": (d,),
                       f"VQ.{head}.2.weight": (out, d), f"VQ.{head}.2.bias": (out,)})
    shapes.update({"domain_classifier.0.weight": (domain_hidden, d), "domain_classifier.0.bias": (domain_hidden,),
                   "domain_classifier.2.weight": (2, domain_hidden), "domain_classifier.2.bias": (2,)})

    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for k, shape in shapes.items():
        r = torch.randn(*shape, generator=g)
        if k.endswith("embed.weight") and len(shape) == 2 and "patch_embed" not in k:
            sd[k] = 0.5 * r  # pos/time embeddings
        elif ("norm" in k or "ln_" in k) and k.endswith("weight"):
            sd[k] = 1.0 + 0.2 * r  # LayerNorm / GroupNorm scales
        elif k.endswith("bias"):
            sd[k] = 0.2 * r
        else:  # conv and linear weights: unit-variance outputs
            sd[k] = r / math.sqrt(math.prod(shape[1:]))
    code = F.normalize(torch.randn(codebook_size, code_dim, generator=g), dim=-1)
    sd.update({"VQ.quantize.embedding.weight": code, "VQ.quantize.embedding.cluster_size": torch.rand(codebook_size),
               "VQ.quantize.embedding.embed_avg": code.clone(), "VQ.quantize.embedding.initted": torch.tensor([1.0]),
               "VQ.quantize.cluster_size": torch.rand(codebook_size),
               "wte.weight": torch.randn(wte_rows, 768, generator=g)})  # frozen GPT-2 table (50257 rows originally)
    return sd
