"""Context-free and one-code-of-context predictors of the next code: the bars stage 2 must clear.

Both are fitted on train batches and scored on val batches (``targets`` as
:func:`neurolm.lm.targets.next_second_codes` makes them: the code of the same channel one
second later, −1 where there is none).

- **unigram**: no context. Accuracy of always predicting the most frequent train target;
  loss of the add-one-smoothed train target frequencies.
- **bigram**: one code of context, the token's own code (the same channel one second
  earlier than the target). Counts of (code, next code) pairs, smoothed towards the unigram
  with ``prior`` pseudo-counts (default: one per code). A corpus on which the bigram does not beat the unigram has no
  sequential structure a model could learn from (so a model can only match the unigram bar).

Counting is sparse (pairs that occur), so an 8192-code vocabulary costs no 8192² table.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

_NAN = {"loss": float("nan"), "accuracy": float("nan"), "perplexity": float("nan"), "tokens": 0}


def unigram_baseline(train: Iterable[dict[str, torch.Tensor]], val: Iterable[dict[str, torch.Tensor]],
                     n_codes: int) -> dict[str, float]:
    """What a model without context scores: the train-split target frequencies applied to val.

    Accuracy of always predicting the most frequent train target; loss (and perplexity) of the
    add-one-smoothed train frequencies on the val targets. The bar stage 2 must clear.
    """
    counts = torch.ones(n_codes, dtype=torch.float64)
    for b in train:
        y = b["targets"][b["targets"] >= 0]
        counts += torch.bincount(y.reshape(-1), minlength=n_codes)[:n_codes].double()
    logp = (counts / counts.sum()).log()
    best = int(counts.argmax())
    nll, correct, count = 0.0, 0, 0
    for b in val:
        y = b["targets"][b["targets"] >= 0].reshape(-1)
        nll -= float(logp[y].sum())
        correct += int((y == best).sum())
        count += int(y.numel())
    if not count:
        return dict(_NAN)
    return {"loss": nll / count, "accuracy": correct / count, "perplexity": math.exp(nll / count), "tokens": count}


def _pairs(batches: Iterable[dict[str, torch.Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for b in batches:
        sel = b["targets"] >= 0
        xs.append(b["codes"][sel].reshape(-1).long().numpy())
        ys.append(b["targets"][sel].reshape(-1).long().numpy())
    if not xs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def bigram_baseline(train: Iterable[dict[str, torch.Tensor]], val: Iterable[dict[str, torch.Tensor]],
                    n_codes: int, prior: float | None = None) -> dict[str, float]:
    """Next code from the current code of the same channel (see the module doc); same keys as the unigram.

    ``prior``: pseudo-counts of the unigram added to every code's successor counts (default
    ``n_codes``: as much as add-one smoothing spreads).
    """
    xt, yt = _pairs(train)
    xv, yv = _pairs(val)
    if not len(yv):
        return dict(_NAN)
    k = int(n_codes)
    prior = float(k if prior is None else prior)
    uni = np.bincount(yt, minlength=k)[:k].astype(np.float64) + 1.0
    p_uni = uni / uni.sum()
    keys, counts = np.unique(xt * k + yt, return_counts=True)  # sorted by (code, next code)
    rows = np.bincount(xt, minlength=k)[:k].astype(np.float64)
    # the prediction for a code: its most frequent smoothed successor (a seen pair, or the unigram's best)
    best_uni = int(uni.argmax())
    pred = np.full(k, best_uni, dtype=np.int64)
    score = np.full(k, prior * p_uni[best_uni])
    pair_x, pair_y = keys // k, keys % k
    pair_score = counts + prior * p_uni[pair_y]
    order = np.lexsort((-pair_score, pair_x))  # per code, the highest score first
    first = order[np.r_[True, pair_x[order][1:] != pair_x[order][:-1]]] if len(order) else order
    better = pair_score[first] > score[pair_x[first]]
    pred[pair_x[first][better]] = pair_y[first][better]
    # smoothed probability of each val pair
    q = xv * k + yv
    pos = np.searchsorted(keys, q)
    hit = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == q) if len(keys) else np.zeros(len(q), bool)
    c = np.where(hit, counts[np.minimum(pos, max(len(keys) - 1, 0))] if len(keys) else 0, 0)
    p = (c + prior * p_uni[yv]) / (rows[xv] + prior)
    loss = float(-np.log(p).mean())
    return {"loss": loss, "accuracy": float((pred[xv] == yv).mean()), "perplexity": math.exp(min(loss, 50.0)),
            "tokens": int(len(yv))}
