"""Rare-class metrics on arrays: precision, recall, F1, ROC-AUC, accuracy, confusion matrix,
and their mean and standard deviation over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SUMMARY_METRICS = ("precision", "recall", "f1", "auc", "accuracy")
FEW_RARE = 5
"""Below this many real rare samples a rate or metric is reported with a warning."""


def rare_class_metrics(
    labels: np.ndarray, proba: np.ndarray, rare_index: int | Sequence[int]
) -> dict[str, float | list | None]:
    """Metrics of the rare class, one class against the rest.

    Args:
        labels: ``(N,)`` true class indices.
        proba: ``(N, K)`` class probabilities; the prediction is the most probable class.
        rare_index: column of the rare class, or the columns of the fine classes that make up
            the rare class (a network trained on fine labels); the rare-class probability is
            then their sum.

    Returns:
        ``precision``, ``recall``, ``f1`` of the rare class (0 where undefined), ``auc`` (ROC-AUC
        of the rare-class probability; ``None`` when the labels hold one class only),
        ``accuracy`` of the rare-against-the-rest decision (for a network trained on fine
        labels, the task's accuracy, not the fine classes'), ``confusion`` (``K x K``, rows
        true, columns predicted) and ``support`` (rare samples).
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    labels = np.asarray(labels)
    proba = np.asarray(proba, dtype=np.float64)
    predicted = proba.argmax(axis=1)
    rare = np.atleast_1d(np.asarray(rare_index, dtype=np.int64))
    truth, guess = np.isin(labels, rare), np.isin(predicted, rare)
    tp = int(np.sum(truth & guess))
    precision = tp / int(guess.sum()) if guess.any() else 0.0
    recall = tp / int(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    auc = None
    if 0 < truth.sum() < len(truth):
        auc = float(roc_auc_score(truth, proba[:, rare].sum(axis=1)))
    confusion = confusion_matrix(labels, predicted, labels=list(range(proba.shape[1])))
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc": auc,
        "accuracy": float(np.mean(truth == guess)) if len(labels) else 0.0,
        "confusion": confusion.tolist(),
        "support": int(truth.sum()),
    }


def mean_std(values: Sequence[float | None]) -> dict[str, float | None]:
    """Mean and sample standard deviation (``ddof=1``; 0 for one value) of the defined values."""
    defined = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not defined:
        return {"mean": None, "std": None, "n": 0}
    std = float(np.std(defined, ddof=1)) if len(defined) > 1 else 0.0
    return {"mean": float(np.mean(defined)), "std": std, "n": len(defined)}


def summarise(per_seed: Sequence[dict]) -> dict[str, dict[str, float | None]]:
    """``metric -> {mean, std, n}`` over seeds for :data:`SUMMARY_METRICS`."""
    return {name: mean_std([m.get(name) for m in per_seed]) for name in SUMMARY_METRICS}


def format_summary(summary: dict[str, dict]) -> str:
    """``"precision 0.81+-0.04  recall ..."``."""
    parts = []
    for name in SUMMARY_METRICS:
        entry = summary.get(name) or {}
        if entry.get("mean") is None:
            parts.append(f"{name} n/a")
        else:
            parts.append(f"{name} {entry['mean']:.3f}+-{entry['std']:.3f}")
    return "  ".join(parts)
