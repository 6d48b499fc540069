"""L2-normalised EMA vector quantizer (reference §2.2, LaBraM/NeuroLM ``NormEMAVectorQuantizer``).

Both the encoder outputs and the codebook live on the unit sphere, so nearest
code by L2 distance is the code with the largest cosine similarity. The codebook
is not trained by gradients: each training step moves every used code towards
the (normalised) mean of the vectors assigned to it, ``w ← l2norm(d·w + (1-d)·mean)``;
unused codes keep their value. The only loss is the commitment term
``β·MSE(z_q.detach(), z)`` and gradients pass straight through.

Deviation (documented): padding tokens are excluded from the EMA update, the
k-means initialisation and the commitment loss. The original lets the features
of padded positions pull codes around; they carry no signal.

Buffer names (``embedding.weight/cluster_size/embed_avg/initted``) match the
published checkpoints.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def l2norm(t: torch.Tensor) -> torch.Tensor:
    return F.normalize(t, p=2, dim=-1)


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    """Sum over DDP ranks (no-op when not distributed), so every rank applies the same update."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


def kmeans_cosine(x: torch.Tensor, k: int, iters: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Spherical k-means: [N, D] unit vectors → [k, D] unit centroids.

    Starts from k random points (with replacement when N < k); a centroid whose
    cluster empties keeps its previous value.
    """
    n = x.shape[0]
    if n >= k:
        idx = torch.randperm(n, generator=generator, device="cpu")[:k]
    else:
        idx = torch.randint(0, n, (k,), generator=generator, device="cpu")
    means = x[idx.to(x.device)].clone()
    for _ in range(iters):
        assign = (x @ means.t()).argmax(dim=-1)
        sums = torch.zeros_like(means).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        new = l2norm(sums)
        means = torch.where((counts == 0)[:, None], means, new)
    return means


class EmbeddingEMA(nn.Module):
    """The codebook and its EMA statistics (kept as in the original state-dict layout)."""

    def __init__(self, num_codes: int, dim: int, kmeans_init: bool = True):
        super().__init__()
        weight = l2norm(torch.randn(num_codes, dim))
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_avg", weight.clone())
        self.register_buffer("initted", torch.tensor([0.0 if kmeans_init else 1.0]))


class NormEMAVectorQuantizer(nn.Module):
    def __init__(self, num_codes: int, dim: int, beta: float = 1.0, decay: float = 0.99, kmeans_iters: int = 10):
        super().__init__()
        self.num_codes, self.dim, self.beta, self.decay = num_codes, dim, beta, decay
        self.kmeans_iters = kmeans_iters
        self.embedding = EmbeddingEMA(num_codes, dim, kmeans_init=kmeans_iters > 0)
        self.recent: torch.Tensor | None = None

    @torch.no_grad()
    def _init_codebook(self, z: torch.Tensor) -> None:
        """k-means on the first training batch; rank 0's result is broadcast to all ranks."""
        means = kmeans_cosine(z, self.num_codes, self.kmeans_iters)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(means, src=0)
        self.embedding.weight.data.copy_(means)
        self.embedding.embed_avg.data.copy_(means)
        self.embedding.cluster_size.data.fill_(1.0)
        self.embedding.initted.data.fill_(1.0)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest code (max cosine similarity) for unit vectors z [..., D]."""
        return (z @ self.embedding.weight.t()).argmax(dim=-1)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, codes: torch.Tensor) -> None:
        """One EMA step from unit vectors z [N, D] and their codes [N]."""
        onehot = F.one_hot(codes, self.num_codes).to(z.dtype)
        bins = _all_reduce(onehot.sum(0))
        embed_sum = _all_reduce(onehot.t() @ z)  # [K, D]
        d = self.decay
        emb = self.embedding
        emb.cluster_size.mul_(d).add_(bins, alpha=1 - d)
        emb.embed_avg.mul_(d).add_(embed_sum, alpha=1 - d)
        used = bins > 0
        mean = l2norm(embed_sum / bins.clamp_min(1.0)[:, None])
        updated = l2norm(d * emb.weight + (1 - d) * mean)
        emb.weight.data.copy_(torch.where(used[:, None], updated, emb.weight))

    @torch.no_grad()
    def reseed(self, dead: torch.Tensor, candidates: torch.Tensor, generator: torch.Generator) -> int:
        """Replace dead codes ([K] bool) by random candidate unit vectors [N, D]; returns how many.

        Candidates are drawn on rank 0 and broadcast so the codebook stays identical on all ranks.
        """
        n_dead = int(dead.sum())
        if n_dead == 0 or candidates.shape[0] == 0:
            return 0
        pick = torch.randint(0, candidates.shape[0], (n_dead,), generator=generator, device="cpu")
        new = l2norm(candidates[pick.to(candidates.device)].float())
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(new, src=0)
        emb = self.embedding
        emb.weight.data[dead] = new
        emb.embed_avg.data[dead] = new
        emb.cluster_size.data[dead] = 1.0
        return n_dead

    def forward(self, z: torch.Tensor, valid: torch.Tensor | None = None):
        """z [B, L, D] → (z_q straight-through [B, L, D], commitment loss, codes [B, L]).

        ``valid`` [B, L] bool marks real (non-padding) tokens.
        """
        z = l2norm(z.float())
        if valid is None:
            valid = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
        if self.training and not bool(self.embedding.initted.item()):
            self._init_codebook(z[valid] if valid.any() else z.reshape(-1, self.dim))
        codes = self.codes(z)
        z_q = self.embedding.weight[codes]
        if self.training:  # every rank must enter the all-reduce, even with no valid token
            self.ema_update(z[valid], codes[valid])
            self.recent = z[valid].detach()[:4096]  # candidates for re-seeding dead codes (not state)
        if valid.any():
            loss = self.beta * F.mse_loss(z_q.detach()[valid], z[valid])
        else:
            loss = z.sum() * 0.0
        z_q = z + (z_q - z).detach()
        return z_q, loss, codes
