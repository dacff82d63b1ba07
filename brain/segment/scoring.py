"""Instance-segmentation scores: matched precision, recall, F1 and average precision.

Predicted and ground-truth instances are label images (``0`` = background, each other value one
instance). For every pair the intersection over union (IoU) is computed from one joint histogram.
At a threshold ``t``, instances are matched one-to-one by the Hungarian algorithm
(:func:`scipy.optimize.linear_sum_assignment`) maximising the summed IoU over the pairs whose IoU is
at least ``t``; a pair below ``t`` never counts. For ``t >= 0.5`` a match is unique anyway (two
instances cannot both overlap a third by more than half of their union), so greedy matching would
give the same counts; the optimal assignment also makes lower thresholds well defined.

With ``TP`` matched pairs, ``FP`` unmatched predictions and ``FN`` unmatched ground-truth instances:
precision ``TP / (TP + FP)``, recall ``TP / (TP + FN)``, F1 their harmonic mean, and average
precision ``TP / (TP + FP + FN)``: the definition of the 2018 Data Science Bowl, Cellpose and
StarDist (there is no confidence score to rank by, so it is not the area under a PR curve).
``mean_ap`` averages it over the thresholds ``0.5, 0.55, ..., 0.95``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from brain.errors import InputError

IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2).tolist())


@dataclass(frozen=True)
class MatchScores:
    """Scores at one IoU threshold."""

    threshold: float
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """``TP / (TP + FP)`` (``0`` when nothing was predicted)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        """``TP / (TP + FN)`` (``0`` when there is no ground truth)."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """``2 TP / (2 TP + FP + FN)``."""
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else 0.0

    @property
    def average_precision(self) -> float:
        """``TP / (TP + FP + FN)`` (Data Science Bowl 2018 / Cellpose definition)."""
        denom = self.tp + self.fp + self.fn
        return self.tp / denom if denom else 0.0

    def as_dict(self) -> dict[str, float]:
        """The counts and scores as plain numbers."""
        return {
            "threshold": self.threshold,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "average_precision": self.average_precision,
        }


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of a predicted label image against the ground truth at several IoU thresholds."""

    n_pred: int
    n_true: int
    by_threshold: tuple[MatchScores, ...] = field(default_factory=tuple)

    def at(self, threshold: float) -> MatchScores:
        """The scores at ``threshold`` (one of those computed)."""
        for scores in self.by_threshold:
            if abs(scores.threshold - threshold) < 1e-9:
                return scores
        known = ", ".join(f"{s.threshold:g}" for s in self.by_threshold)
        raise KeyError(f"threshold {threshold} not computed; computed: {known}")

    @property
    def mean_ap(self) -> float:
        """Average precision averaged over the computed thresholds."""
        if not self.by_threshold:
            return 0.0
        return float(np.mean([s.average_precision for s in self.by_threshold]))

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary: counts, scores at 0.5 (if computed), mean AP, per threshold."""
        summary: dict[str, object] = {"n_pred": self.n_pred, "n_true": self.n_true}
        if any(abs(s.threshold - 0.5) < 1e-9 for s in self.by_threshold):
            summary.update({k: v for k, v in self.at(0.5).as_dict().items() if k != "threshold"})
        summary["mean_ap"] = self.mean_ap
        summary["by_threshold"] = [s.as_dict() for s in self.by_threshold]
        return summary


def _check_labels(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise InputError(f"{what} must be a 2-D label image, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise InputError(f"{what} must hold integer labels, got {array.dtype}")
    if array.size and array.min() < 0:
        raise InputError(f"{what} has negative labels")
    return array


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Map the labels present to ``1..n`` (background stays 0)."""
    values, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    if values[0] != 0:
        return inverse + 1, len(values)
    return inverse, len(values) - 1


def iou_matrix(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """IoU between every predicted and every ground-truth instance.

    Args:
        pred: predicted label image ``(H, W)``.
        true: ground-truth label image of the same shape.

    Returns:
        ``(n_pred, n_true)`` float array, instances in increasing label order.

    Raises:
        InputError: if the shapes differ or an input is not a label image.
    """
    pred = _check_labels(pred, "predicted mask")
    true = _check_labels(true, "ground-truth mask")
    if pred.shape != true.shape:
        raise InputError(
            f"mask size mismatch: prediction {pred.shape[1]}x{pred.shape[0]}, "
            f"ground truth {true.shape[1]}x{true.shape[0]} (width x height)"
        )
    p, n_p = _relabel(pred)
    t, n_t = _relabel(true)
    joint = np.bincount(
        (p.ravel().astype(np.int64) * (n_t + 1) + t.ravel()), minlength=(n_p + 1) * (n_t + 1)
    ).reshape(n_p + 1, n_t + 1)
    inter = joint[1:, 1:].astype(np.float64)
    area_p = joint[1:, :].sum(axis=1, keepdims=True)
    area_t = joint[:, 1:].sum(axis=0, keepdims=True)
    union = area_p + area_t - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_counts(iou: np.ndarray, threshold: float) -> MatchScores:
    """TP / FP / FN from an IoU matrix: Hungarian matching over pairs with IoU >= ``threshold``."""
    n_pred, n_true = iou.shape
    tp = 0
    if n_pred and n_true:
        eligible = iou >= threshold
        if eligible.any():
            rows, cols = linear_sum_assignment(np.where(eligible, iou, 0.0), maximize=True)
            tp = int(eligible[rows, cols].sum())
    return MatchScores(threshold=float(threshold), tp=tp, fp=n_pred - tp, fn=n_true - tp)


def score_instances(
    pred: np.ndarray,
    true: np.ndarray,
    *,
    thresholds: tuple[float, ...] | list[float] = IOU_THRESHOLDS,
) -> SegmentationScores:
    """Score a predicted label image against ground-truth instances.

    Args:
        pred: predicted label image ``(H, W)`` (``0`` = background).
        true: ground-truth label image, same shape.
        thresholds: IoU thresholds (default ``0.5, 0.55, ..., 0.95``).

    Returns:
        Counts and precision / recall / F1 / average precision per threshold, and the mean AP.

    Raises:
        InputError: on a size mismatch or inputs that are not label images.
    """
    iou = iou_matrix(pred, true)
    per = tuple(match_counts(iou, float(t)) for t in thresholds)
    return SegmentationScores(n_pred=iou.shape[0], n_true=iou.shape[1], by_threshold=per)
