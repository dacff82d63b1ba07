"""Rare-class metrics on arrays: precision, recall, F1, ROC-AUC, accuracy, confusion matrix,
recall at a specificity fixed on val, and their mean and standard deviation over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from brain.errors import InputError

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


def rare_scores(proba: np.ndarray, rare_index: int | Sequence[int]) -> np.ndarray:
    """``(N,)`` rare-class probability of each row of ``proba`` (summed over the rare columns
    of a network trained on fine labels)."""
    rare = np.atleast_1d(np.asarray(rare_index, dtype=np.int64))
    return np.asarray(proba, dtype=np.float64)[:, rare].sum(axis=1)


def check_specificity(specificity: float) -> float:
    """``specificity`` if it lies strictly between 0 and 1.

    Raises:
        InputError: otherwise.
    """
    if not 0 < specificity < 1:
        raise InputError(
            f"`specificity` must lie strictly between 0 and 1, got {specificity}",
            params=("specificity",),
        )
    return float(specificity)


def threshold_at_specificity(other_scores: np.ndarray, specificity: float) -> float:
    """The lowest threshold ``t`` on the rare-class score such that calling a sample rare when
    its score is above ``t`` keeps at least ``specificity`` of ``other_scores`` (the scores of
    other-class samples) below it: the ``(k + 1)``-th largest of them, where
    ``k = floor((1 - specificity) n)`` of the ``n`` may lie above.

    Raises:
        InputError: ``specificity`` outside ``(0, 1)``.
        ValueError: no other-class score.
    """
    check_specificity(specificity)
    scores = np.sort(np.asarray(other_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("need at least one other-class score")
    allowed = int(np.floor((1 - specificity) * scores.size + 1e-9))
    return float(scores[allowed])


def recall_at_specificity(
    val_truth: np.ndarray,
    val_score: np.ndarray,
    test_truth: np.ndarray,
    test_score: np.ndarray,
    specificity: float,
) -> dict[str, float | int | None]:
    """Recall of the rare class on test at the threshold that reaches ``specificity`` on val
    (:func:`threshold_at_specificity`): the operating point is chosen on val only, and test
    only reports it.

    Args:
        val_truth, test_truth: ``(N,)`` rare-class masks.
        val_score, test_score: ``(N,)`` rare-class scores (:func:`rare_scores`).
        specificity: the val specificity asked, in ``(0, 1)``.

    Returns:
        ``target``, ``threshold``, ``val_specificity`` (reached on val), ``recall`` and
        ``test_specificity`` on test, and the test counts behind them (``tp`` of ``n_rare``,
        ``tn`` of ``n_other``); ``threshold`` and the rates are ``None`` without other-class
        val samples, a rate is ``None`` without test samples of its class.
    """
    check_specificity(specificity)
    val_truth, test_truth = np.asarray(val_truth, bool), np.asarray(test_truth, bool)
    val_score, test_score = np.asarray(val_score, float), np.asarray(test_score, float)
    n_rare, n_other = int(test_truth.sum()), int((~test_truth).sum())
    result: dict[str, float | int | None] = {
        "target": float(specificity),
        "threshold": None,
        "val_specificity": None,
        "recall": None,
        "test_specificity": None,
        "tp": 0,
        "n_rare": n_rare,
        "tn": 0,
        "n_other": n_other,
    }
    if not (~val_truth).any():
        return result
    threshold = threshold_at_specificity(val_score[~val_truth], specificity)
    tp = int(np.sum(test_score[test_truth] > threshold))
    tn = int(np.sum(test_score[~test_truth] <= threshold))
    result.update(
        threshold=threshold,
        val_specificity=float(np.mean(val_score[~val_truth] <= threshold)),
        recall=tp / n_rare if n_rare else None,
        test_specificity=tn / n_other if n_other else None,
        tp=tp,
        tn=tn,
    )
    return result


def pool_at_specificity(parts: Sequence[dict]) -> dict[str, float | int | None]:
    """:func:`recall_at_specificity` of several folds (each with its own val threshold) pooled
    over their test samples: summed counts, the rates recomputed from them, and
    ``thresholds``."""
    tp, n_rare = sum(p["tp"] for p in parts), sum(p["n_rare"] for p in parts)
    tn, n_other = sum(p["tn"] for p in parts), sum(p["n_other"] for p in parts)
    defined = all(p["threshold"] is not None for p in parts)
    return {
        "target": parts[0]["target"],
        "thresholds": [p["threshold"] for p in parts],
        "recall": tp / n_rare if n_rare and defined else None,
        "test_specificity": tn / n_other if n_other and defined else None,
        "tp": tp,
        "n_rare": n_rare,
        "tn": tn,
        "n_other": n_other,
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
