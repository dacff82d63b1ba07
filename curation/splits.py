"""Seeded, stratified, group-aware train/val/test splits."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from curation.errors import CurateError

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_NAMES = ("train", "val", "test")
_RESOLUTION = 20  # fractions are honoured to 1/20 = 5 %


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/val/test fractions (three positive numbers summing to 1)."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) <= 0 or abs(sum(values) - 1.0) > 1e-6:
        raise CurateError(
            f"split fractions must be three positive numbers summing to 1, got {values}"
        )
    return values  # type: ignore[return-value]


def _fold_counts(fractions: tuple[float, float, float], n_folds: int) -> list[int]:
    """How many of ``n_folds`` folds go to each split (largest remainder, each split >= 1)."""
    raw = np.asarray(fractions) * n_folds
    counts = np.maximum(np.floor(raw).astype(int), 1)
    while counts.sum() < n_folds:
        counts[int(np.argmax(raw - counts))] += 1
    while counts.sum() > n_folds:
        counts[int(np.argmax(counts))] -= 1
    return counts.tolist()


def stratified_group_split(
    labels: Sequence[str],
    groups: Sequence[str] | None = None,
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
) -> list[str]:
    """Assign each sample to ``train`` / ``val`` / ``test``.

    Samples of one group always land in the same split; label proportions are kept as close as
    the groups allow (scikit-learn's ``StratifiedGroupKFold`` over 20 folds, folds then dealt out
    to the splits by the fractions). Without groups every sample is its own group.

    Raises:
        CurateError: if there are fewer than three groups or the fractions are invalid.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    fractions = check_fractions(fractions)
    n = len(labels)
    group_ids = np.asarray(
        groups if groups is not None else [str(i) for i in range(n)], dtype=object
    )
    n_groups = len(set(group_ids.tolist()))
    if n_groups < 3:
        raise CurateError(f"cannot split {n_groups} group(s) into train, val and test")
    label_codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1]
    n_folds = min(_RESOLUTION, n_groups, int(np.bincount(label_codes).max()))
    if n_folds < 3:
        raise CurateError("too few samples to split into train, val and test")
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(n, dtype=int)
    with warnings.catch_warnings():
        # a class rarer than n_folds only triggers a warning: that class is spread as far as it goes
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test_index) in enumerate(
            splitter.split(np.zeros(n), label_codes, group_ids.astype(str))
        ):
            fold_of[test_index] = fold
    rng = np.random.default_rng(seed)
    fold_order = rng.permutation(n_folds)
    counts = _fold_counts(fractions, n_folds)
    split_of_fold = np.empty(n_folds, dtype=object)
    start = 0
    for name, count in zip(SPLIT_NAMES, counts, strict=True):
        split_of_fold[fold_order[start : start + count]] = name
        start += count
    return split_of_fold[fold_of].tolist()
