"""Seeded, stratified, group-aware train/val/test splits."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from brain.errors import InputError

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
LABELLED_SPLITS = ("train", "val", "test")
_RESOLUTION = 20  # fractions are honoured to 1/20 = 5 %


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/val/test fractions (three positive numbers summing to 1)."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) <= 0 or abs(sum(values) - 1.0) > 1e-6:
        raise InputError(
            f"split `fractions` must be three positive numbers summing to 1, got {values}",
            params=("fractions",),
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


def _coverage(split_of_fold: np.ndarray, fold_labels: list[set[int]]) -> int:
    """How many ``(split, label)`` pairs have a fold."""
    return len(
        {(split_of_fold[f], label) for f, labels in enumerate(fold_labels) for label in labels}
    )


def _cover_splits(split_of_fold: np.ndarray, fold_labels: list[set[int]]) -> np.ndarray:
    """Swap pairs of folds between splits while a swap covers more ``(split, label)`` pairs, so
    that a label in three folds or more reaches every split where swaps allow (fold counts per
    split are kept; a deal that already covers every pair is left as it is)."""
    split_of_fold = split_of_fold.copy()
    best = _coverage(split_of_fold, fold_labels)
    improved = True
    while improved:
        improved = False
        for a in range(len(fold_labels)):
            for b in range(len(fold_labels)):
                if split_of_fold[a] == split_of_fold[b]:
                    continue
                split_of_fold[[a, b]] = split_of_fold[[b, a]]
                score = _coverage(split_of_fold, fold_labels)
                if score > best:
                    best, improved = score, True
                else:
                    split_of_fold[[a, b]] = split_of_fold[[b, a]]
    return split_of_fold


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
    to the splits by the fractions; where that deal leaves a label that is in three folds or more
    out of a split, folds are swapped between splits to give each split one). Without groups
    (or when every group has one sample) the folds are ``StratifiedKFold``'s, in linear time.

    Raises:
        InputError: if there are fewer than three groups or the fractions are invalid.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    fractions = check_fractions(fractions)
    n = len(labels)
    group_ids = np.asarray(
        groups if groups is not None else [str(i) for i in range(n)], dtype=object
    )
    n_groups = len(set(group_ids.tolist()))
    if n_groups < 3:
        raise InputError(f"cannot split {n_groups} group(s) into train, val and test")
    label_codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)[1]
    n_folds = min(_RESOLUTION, n_groups, int(np.bincount(label_codes).max()))
    if n_folds < 3:
        raise InputError("too few samples to split into train, val and test")
    # one sample per group: a plain stratified deal (StratifiedGroupKFold costs ~1 ms a group)
    singletons = n_groups == n
    kind = StratifiedKFold if singletons else StratifiedGroupKFold
    splitter = kind(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(n, dtype=int)
    with warnings.catch_warnings():
        # a class rarer than n_folds only triggers a warning: that class is spread as far as it goes
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test_index) in enumerate(
            splitter.split(np.zeros(n), label_codes, None if singletons else group_ids.astype(str))
        ):
            fold_of[test_index] = fold
    rng = np.random.default_rng(seed)
    fold_order = rng.permutation(n_folds)
    counts = _fold_counts(fractions, n_folds)
    split_of_fold = np.empty(n_folds, dtype=object)
    start = 0
    for name, count in zip(LABELLED_SPLITS, counts, strict=True):
        split_of_fold[fold_order[start : start + count]] = name
        start += count
    fold_labels = [set(label_codes[fold_of == fold].tolist()) for fold in range(n_folds)]
    split_of_fold = _cover_splits(split_of_fold, fold_labels)
    return split_of_fold[fold_of].tolist()


def stratified_group_folds(
    labels: Sequence[str],
    groups: Sequence[str | None] | None,
    n_folds: int,
    *,
    rare: str,
    seed: int = 0,
) -> np.ndarray:
    """Assign each sample to one of ``n_folds`` folds for grouped cross-validation.

    Samples of one group share a fold; labels are spread over the folds as evenly as the groups
    allow (scikit-learn's ``StratifiedGroupKFold``). Samples without a group are their own group.

    Raises:
        InputError: fewer than 2 folds, or more folds than groups holding the rare class
            (a fold would test no rare sample).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.asarray(labels, dtype=object).astype(str)
    n = len(labels)
    group_ids = np.array(
        [g if g is not None else f"__sample_{i}" for i, g in enumerate(groups or [None] * n)],
        dtype=object,
    ).astype(str)
    rare_groups = len(set(group_ids[labels == rare].tolist()))
    if n_folds < 2:
        raise InputError(f"`cv` needs at least 2 folds, got {n_folds}", params=("cv",))
    if n_folds > rare_groups:
        raise InputError(
            f"`cv` {n_folds}: the rare class {rare!r} lies in only {rare_groups} group(s), so "
            f"some folds would test no rare sample; use at most `cv` {rare_groups}",
            params=("cv",),
        )
    codes = np.unique(labels, return_inverse=True)[1]
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of = np.empty(n, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, test_index) in enumerate(splitter.split(np.zeros(n), codes, group_ids)):
            fold_of[test_index] = fold
    return fold_of


def fold_splits(fold_of: np.ndarray, fold: int, n_folds: int) -> np.ndarray:
    """``train`` / ``val`` / ``test`` of every sample when ``fold`` is tested: the next fold
    (cyclically) is val, the others train."""
    split = np.full(len(fold_of), "train", dtype=object)
    split[fold_of == (fold + 1) % n_folds] = "val"
    split[fold_of == fold] = "test"
    return split
