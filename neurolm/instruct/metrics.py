"""Metrics of one task and split: honest ones, and the original's way for comparison (reference §4.5).

Honest (the default):

- **option scoring** (``balanced_accuracy`` …, no prefix): class probabilities from the option
  log-likelihoods; binary tasks: AUROC and AUC-PR (average precision, as PyHealth's ``pr_auc``)
  from the probability of the positive class, balanced accuracy and accuracy of the argmax;
  multi-class: balanced accuracy, Cohen's κ, weighted F1, accuracy of the argmax.
- **generation** (``gen_`` prefix): the parsed greedy answer; an unparsable answer is never mapped
  to a class — it counts as wrong, and ``unparsable`` says how many there were.

Reference (``ref_`` prefix, ``--metrics reference``): the original's computation on the same
generated answers: unparsable = −1; binary: the hard label in {−1, 0, 1} is the "probability"
(AUROC/AUC-PR from it; thresholded at 0.5, so −1 → class 0); multi-class: ``np.eye(n)[pred]``,
so −1 becomes the last class.

A metric sklearn cannot define (AUROC with one class present) is NaN, never a made-up number.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

BINARY_METRICS = ("balanced_accuracy", "pr_auc", "roc_auc", "accuracy")
MULTICLASS_METRICS = ("balanced_accuracy", "cohen_kappa", "f1_weighted", "accuracy")


def metric_names(kind: str) -> tuple[str, ...]:
    return BINARY_METRICS if kind == "binary" else MULTICLASS_METRICS


def _ranking(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    if len(np.unique(y)) < 2:
        return {"pr_auc": float("nan"), "roc_auc": float("nan")}
    return _bounded({"pr_auc": float(average_precision_score(y, score)), "roc_auc": float(roc_auc_score(y, score))})


def _hard(y: np.ndarray, pred: np.ndarray, kind: str) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score, f1_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true": intended, reported as is
        out = {"balanced_accuracy": float(balanced_accuracy_score(y, pred)), "accuracy": float(accuracy_score(y, pred))}
        if kind != "binary":
            k = cohen_kappa_score(y, pred)
            out["cohen_kappa"] = float(k) if np.isfinite(k) else float("nan")
            out["f1_weighted"] = float(f1_score(y, pred, average="weighted", zero_division=0))
    return _bounded(out)


def _bounded(out: dict[str, float]) -> dict[str, float]:
    """Metrics in [-1, 1] kept there: sklearn's sums can land a rounding step outside (the average precision
    of a perfect ranking can be 1.0000000000000002), which the RESULTS schema rightly refuses."""
    return {k: float(np.clip(v, -1.0, 1.0)) if np.isfinite(v) else v for k, v in out.items()}


def option_metrics(y: Sequence[int], probs: np.ndarray, kind: str) -> dict[str, float]:
    """Honest metrics from class probabilities [n, K] (option scoring)."""
    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    out = _hard(y, pred, kind)
    if kind == "binary":
        out.update(_ranking(y, probs[:, 1]))
    return {k: out[k] for k in metric_names(kind)}


def generation_metrics(y: Sequence[int], parsed: Sequence[int | None], n_classes: int) -> dict[str, float | int]:
    """Accuracy and balanced accuracy of parsed answers over all n, an unparsable answer counted as wrong."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.array([-1 if p is None else int(p) for p in parsed], dtype=np.int64)
    hit = pred == y
    recalls = [float(hit[y == c].mean()) for c in range(n_classes) if (y == c).any()]
    return {"gen_accuracy": float(hit.mean()) if len(y) else float("nan"),
            "gen_balanced_accuracy": float(np.mean(recalls)) if recalls else float("nan"),
            "unparsable": int((pred < 0).sum())}


def reference_metrics(y: Sequence[int], parsed: Sequence[int | None], n_classes: int, kind: str) -> dict[str, float]:
    """The original's metrics of the generated answers (module doc), keys prefixed ``ref_``."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.array([-1 if p is None else int(p) for p in parsed], dtype=np.int64)
    if kind == "binary":
        score = pred.astype(np.float64)  # the hard label is the "probability"
        out = _hard(y, (score >= 0.5).astype(np.int64), kind)
        out.update(_ranking(y, score))
    else:
        onehot = np.eye(n_classes)[pred]  # −1 → the last row: the last class
        out = _hard(y, onehot.argmax(axis=1), kind)
    return {f"ref_{k}": out[k] for k in metric_names(kind)}


def confusion(y: Sequence[int], pred: Sequence[int | None], n_classes: int) -> np.ndarray:
    """Counts [n_classes, n_classes + 1]: rows true class, columns predicted class, last column unparsable."""
    m = np.zeros((n_classes, n_classes + 1), dtype=np.int64)
    for t, p in zip(y, pred):
        m[int(t), n_classes if p is None else int(p)] += 1
    return m
