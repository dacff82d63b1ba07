"""How well a filter separates candidates that should pass from those that should be rejected.

Used on real data, where the truth is known: held-out real rare-class samples should pass; real
samples of other classes and corrupted rare-class samples should be rejected.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from brain.errors import InputError


def _ratio(numerator: int, denominator: int) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def filter_quality(
    scores: np.ndarray, should_pass: np.ndarray, passed: np.ndarray | None = None
) -> dict[str, float | int]:
    """AUROC of the scores and precision / recall of the pass and reject decisions.

    Args:
        scores: ``(N,)`` filter scores (higher = more like the real rare class).
        should_pass: ``(N,)`` booleans, the truth.
        passed: ``(N,)`` booleans, the filter's decisions; without it only ``auroc`` and the
            counts are returned.

    Returns:
        ``n``, ``n_should_pass``, ``auroc`` and, with ``passed``: ``n_pass``,
        ``pass_precision`` (of the passed, the fraction that should pass), ``pass_recall`` (of
        those that should pass, the fraction passed), ``reject_precision``, ``reject_recall``
        (the same for rejection) and ``accuracy``. A ratio with an empty denominator is NaN.

    Raises:
        InputError: lengths differ, or ``should_pass`` holds only one class (no AUROC).
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(should_pass, dtype=bool)
    if scores.shape != truth.shape or scores.ndim != 1:
        raise InputError(f"scores {scores.shape} and truth {truth.shape} must be equal 1-D")
    if truth.all() or not truth.any():
        raise InputError("quality needs candidates that should pass and ones that should not")
    result: dict[str, float | int] = {
        "n": len(truth),
        "n_should_pass": int(truth.sum()),
        "auroc": float(roc_auc_score(truth, np.nan_to_num(scores, posinf=np.finfo(float).max))),
    }
    if passed is None:
        return result
    decided = np.asarray(passed, dtype=bool)
    if decided.shape != truth.shape:
        raise InputError(f"decisions {decided.shape} and truth {truth.shape} must be equal")
    true_pass = int((decided & truth).sum())
    true_reject = int((~decided & ~truth).sum())
    result.update(
        n_pass=int(decided.sum()),
        pass_precision=_ratio(true_pass, int(decided.sum())),
        pass_recall=_ratio(true_pass, int(truth.sum())),
        reject_precision=_ratio(true_reject, int((~decided).sum())),
        reject_recall=_ratio(true_reject, int((~truth).sum())),
        accuracy=_ratio(true_pass + true_reject, len(truth)),
    )
    return result
