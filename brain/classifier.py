"""The classifier protocol on decoded images: one network per seed, trained on train, its epoch
picked on val, the rare class reported on test; or cross-validated over grouped folds.

Pure: :class:`~brain.data.ImageSet` s in; metrics, checkpoints (``state_dict`` + JSON model
card, :mod:`brain.checkpoints`) and test probabilities out. Reading the sets from a dataset and
storing the run is ``curation.runs.train``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brain.checkpoints import ModelCard, save_checkpoint
from brain.data import ImageSet, channel_stats
from brain.devices import resolve_device, torch_threads
from brain.errors import InputError
from brain.metrics import (
    FEW_RARE,
    pool_at_specificity,
    rare_class_metrics,
    rare_scores,
    recall_at_specificity,
    summarise,
)
from brain.progress import progress_bar
from brain.settings import TrainSettings
from brain.splits import LABELLED_SPLITS, fold_splits, stratified_group_folds
from brain.training import channel_tensor, fit, run_network


@dataclass
class Trained:
    """What training every seed (and fold) gave.

    Attributes:
        per_seed: per seed, the rare-class metrics on the test samples (:func:`~brain.metrics.
            rare_class_metrics`) with ``seed``, ``at_specificity`` (the recall on test at the
            threshold reaching ``settings.specificity`` on val, :func:`~brain.metrics.
            recall_at_specificity`; pooled over the folds with their own thresholds) and,
            without folds, ``best_epoch``, ``epochs_run``, ``val_f1`` and ``val_auc``.
        checkpoints: the final checkpoint folders, seed by seed (fold by fold).
        probas: per seed, the ``(N, K)`` probabilities of :attr:`test`.
        test: the test samples (pooled over the folds: every sample once).
        folds: per fold, ``fold``, ``n_train``, ``n_test``, ``n_test_rare`` and the mean
            ``metrics`` over seeds (empty without folds).
    """

    per_seed: list[dict]
    checkpoints: list[str]
    probas: list[np.ndarray]
    test: ImageSet
    folds: list[dict] = field(default_factory=list)


def task_probabilities(proba: np.ndarray, rare_outputs: Sequence[int], rare_first: bool):
    """``(N, 2)`` probabilities of a binary task from a fine-label network's ``(N, K)`` ones."""
    rare = proba[:, list(rare_outputs)].sum(axis=1)
    columns = (rare, 1.0 - rare) if rare_first else (1.0 - rare, rare)
    return np.stack(columns, axis=1)


def check_labels(
    train: ImageSet, val: ImageSet, test: ImageSet, rare_index: int | Sequence[int]
) -> None:
    """Every sample labelled, two classes to train on, and the rare class in every split.

    Raises:
        InputError: naming the split and the problem.
    """
    for name, part in (("train", train), ("val", val), ("test", test)):
        missing = int(np.sum(part.labels < 0))
        if missing:
            raise InputError(f"{missing} {name} samples have no label of the dataset's classes")
    if len(set(train.labels.tolist())) < 2:
        raise InputError("the training data holds a single class; need at least two")
    for name, part in (("train", train), ("val", val), ("test", test)):
        if not np.any(np.isin(part.labels, rare_index)):
            raise InputError(f"no rare-class sample in the {name} split")


def sample_pairs(part: ImageSet) -> list[tuple[str, int]]:
    """Sorted ``(sample id, label)`` pairs, what a digest is taken over."""
    return sorted(zip(part.ids, part.labels.tolist(), strict=True))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Positions of about ``size`` samples keeping class proportions (at least one per class)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for code in np.unique(labels):
        where = np.flatnonzero(labels == code)
        take = max(1, round(size * len(where) / len(labels)))
        chosen.append(rng.permutation(where)[:take])
    return np.sort(np.concatenate(chosen))


def oversampled(train: ImageSet, rare_index, count: int, seed: int) -> ImageSet:
    """``train`` plus ``count`` copies of its real rare samples drawn with replacement."""
    real_rare = np.flatnonzero(
        np.isin(train.labels, rare_index) & (np.array(train.origins, dtype=object) != "synthetic")
    )
    if count < 0 or not len(real_rare):
        raise InputError(f"cannot oversample {count} copies of {len(real_rare)} real rare images")
    draws = np.random.default_rng(seed).choice(real_rare, size=count, replace=True)
    return ImageSet.concat([train, train.subset(draws)])


def card_fields(
    settings: TrainSettings,
    classes: Sequence[str],
    rare: str,
    shape: tuple[int, int, int],
    stats: tuple[list[float], list[float]],
    data_digest: str,
) -> dict:
    """The :class:`~brain.checkpoints.ModelCard` fields every seed's checkpoint shares."""
    return {
        "arch": settings.arch,
        "classes": list(classes),
        "rare_class": rare,
        "in_channels": int(shape[2]),
        "input_size": [int(shape[0]), int(shape[1])],
        "resize": "pad-resize" if settings.size is not None else "none",
        "mean": stats[0],
        "std": stats[1],
        "data_digest": data_digest,
        "pad": settings.pad,
    }


def train_seeds(
    train: ImageSet,
    val: ImageSet,
    test: ImageSet,
    *,
    seeds: list[int],
    settings: TrainSettings,
    card: dict,
    rare_index: int | Sequence[int],
    folder: Path,
    final: Path,
    progress: bool,
) -> Trained:
    """Train every seed, keep the epoch best on ``val``, test it on ``test`` (also at the
    threshold that reaches ``settings.specificity`` on ``val``) and write its checkpoint into
    ``folder / seed_<seed>`` (named ``final / seed_<seed>`` in the results: the caller moves
    ``folder`` there)."""
    per_seed, checkpoints, probas = [], [], []
    mean = channel_tensor(card["mean"], settings.device)
    std = channel_tensor(card["std"], settings.device)
    done = progress_bar(
        total=len(seeds), desc="seeds", unit="seed", enabled=progress and len(seeds) > 1, every=1
    )
    for seed in seeds:
        result = fit(
            train,
            val,
            num_classes=len(card["classes"]),
            rare_index=rare_index,
            mean=card["mean"],
            std=card["std"],
            settings=settings,
            seed=seed,
            progress=progress,
        )
        proba = run_network(result.model, test.images, mean=mean, std=std, device=settings.device)
        metrics = rare_class_metrics(test.labels, proba, rare_index)
        at_specificity = _operating_point(
            result.model, val, test, proba, mean=mean, std=std, settings=settings, rare=rare_index
        )
        model_card = ModelCard(**card, seed=seed, best_epoch=result.best_epoch, metrics=metrics)
        save_checkpoint(result.model, model_card, folder / f"seed_{seed}")
        checkpoints.append(str(final / f"seed_{seed}"))
        per_seed.append(
            {
                "seed": seed,
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "val_f1": result.best_val.get("f1"),
                "val_auc": result.best_val.get("auc"),
                **metrics,
                "at_specificity": at_specificity,
            }
        )
        probas.append(proba)
        done.set_postfix(seed=seed, test_f1=f"{metrics['f1']:.3f}")
        done.update()
    done.close()
    return Trained(per_seed, checkpoints, probas, test)


def _operating_point(
    model, val: ImageSet, test: ImageSet, test_proba: np.ndarray, *, mean, std, settings, rare
) -> dict:
    """Recall on ``test`` at the threshold that reaches ``settings.specificity`` on ``val``
    (the val split is scored once more by the kept network)."""
    val_proba = run_network(model, val.images, mean=mean, std=std, device=settings.device)
    return recall_at_specificity(
        np.isin(val.labels, rare),
        rare_scores(val_proba, rare),
        np.isin(test.labels, rare),
        rare_scores(test_proba, rare),
        settings.specificity,
    )


def fold_assignment(
    parts: ImageSet, groups: Sequence, cv: int, rare_index, seed: int
) -> np.ndarray:
    """Grouped, stratified fold of every sample of ``parts`` (``groups``: one per sample).

    Raises:
        InputError: more folds than rare groups, or a fold without a rare sample.
    """
    rare = np.isin(parts.labels, rare_index)
    fold_of = stratified_group_folds(
        np.where(rare, "rare", parts.labels.astype(str)), groups, cv, rare="rare", seed=seed
    )
    lacking = [f for f in range(cv) if not rare[fold_of == f].any()]
    if lacking:
        raise InputError(
            f"`cv` {cv}: fold(s) {lacking} got no rare sample (the rare groups do not spread "
            "that far); use fewer folds",
            params=("cv",),
        )
    return fold_of


def cross_validate(
    pooled: ImageSet,
    fold_of: np.ndarray,
    *,
    seeds: list[int],
    settings: TrainSettings,
    card: dict,
    rare_index: int | Sequence[int],
    folder: Path,
    final: Path,
    progress: bool,
) -> Trained:
    """Train every seed on every fold (the fold tests, the next one picks the epoch, the rest
    trains); metrics pooled over the folds per seed, with per-fold means in ``folds``."""
    n_folds = int(fold_of.max()) + 1
    checkpoints, folds, tested, fold_probas, fold_points = [], [], [], [], []
    for fold in range(n_folds):
        split = fold_splits(fold_of, fold, n_folds)
        train, val, test = (pooled.subset(np.flatnonzero(split == s)) for s in LABELLED_SPLITS)
        stats = channel_stats(train.images)
        trained = train_seeds(
            train,
            val,
            test,
            seeds=seeds,
            settings=settings,
            card={**card, "mean": stats[0], "std": stats[1]},
            rare_index=rare_index,
            folder=folder / f"fold_{fold}",
            final=final / f"fold_{fold}",
            progress=progress,
        )
        checkpoints += trained.checkpoints
        tested.append(test)
        fold_probas.append(trained.probas)
        fold_points.append([entry["at_specificity"] for entry in trained.per_seed])
        folds.append(
            {
                "fold": fold,
                "n_train": len(train),
                "n_test": len(test),
                "n_test_rare": int(np.isin(test.labels, rare_index).sum()),
                "metrics": {
                    name: entry["mean"] for name, entry in summarise(trained.per_seed).items()
                },
            }
        )
    test = ImageSet.concat(tested)
    probas = [np.concatenate([p[i] for p in fold_probas]) for i in range(len(seeds))]
    per_seed = [
        {
            "seed": s,
            **rare_class_metrics(test.labels, proba, rare_index),
            "at_specificity": pool_at_specificity([points[i] for points in fold_points]),
        }
        for i, (s, proba) in enumerate(zip(seeds, probas, strict=True))
    ]
    return Trained(per_seed, checkpoints, probas, test, folds)


def few_rare_warnings(val, test, rare_index, cv: int | None, folds: list[dict]) -> list[str]:
    """Warnings for metrics that rest on fewer than :data:`~brain.metrics.FEW_RARE` rare
    samples."""
    warnings = []
    if cv is None:
        for name, part in (("val", val), ("test", test)):
            n = int(np.isin(part.labels, rare_index).sum())
            if n < FEW_RARE:
                warnings.append(
                    f"the {name} split holds {n} rare sample(s): its metrics rest on fewer than "
                    f"{FEW_RARE}; cross-validate (--cv 5) so that every rare sample is tested"
                )
    else:
        thin = [f["fold"] for f in folds if f["n_test_rare"] < FEW_RARE]
        if thin:
            warnings.append(
                f"folds {thin} test fewer than {FEW_RARE} rare samples each: per-fold metrics "
                "are rough; the pooled ones use every rare sample"
            )
    return warnings


def card_stats(card: ModelCard, device: str):
    """``(mean, std)`` of ``card`` as ``(1, C, 1, 1)`` tensors on ``device``."""
    return channel_tensor(card.mean, device), channel_tensor(card.std, device)


def run_checkpoint(
    model,
    card: ModelCard,
    images: ImageSet,
    *,
    features: bool = False,
    batch_size: int = 256,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Class probabilities ``(N, K)`` or, with ``features``, penultimate vectors ``(N, D)`` of
    ``images`` (shaped as ``card`` expects) under ``card``'s network ``model``.

    ``device`` is ``auto``, ``cpu`` or ``cuda``; ``num_threads`` the torch intra-op threads
    while it runs (``None``: torch's default).
    """
    device = resolve_device(device)
    mean, std = card_stats(card, device)
    with torch_threads(num_threads):
        return run_network(
            model.to(device),
            images.images,
            mean=mean,
            std=std,
            device=device,
            batch_size=batch_size,
            features=features,
            progress=progress,
        )
