"""A study under grouped K-fold cross-validation (``cv: K`` in the config).

For small rare classes a fixed split tests one or two rare images. Instead, the real labelled
samples are dealt into ``K`` folds by group (stratified by label, see
:func:`brain.splits.stratified_group_folds`); for each fold a dataset ``<name>-cv<f>of<K>``
holds the real samples (and the pool) with that fold as test, the next fold as val and the rest
as train, and the whole study runs on it: generators, embeddings, filter, calibration and every
arm see that fold's train part only, and test only that fold. Every rare sample is tested
exactly once.

Pooling: per arm and seed, precision, recall and F1 come from the confusion counts summed over
the folds (every test sample counted once); AUC is the mean over folds. The per-fold spread is
reported beside it. The intervals over the test samples come from the pooled counts, and the
recall at a fixed val specificity from the test counts summed over the folds, each fold at its
own val threshold. The fold datasets persist, so a rerun resumes each fold's study.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from fiftyone import ViewField as F

from brain.metrics import mean_std, pool_at_specificity
from brain.splits import fold_splits, stratified_group_folds
from brain.stats import count_intervals
from curation.datasets import dataset_exists, open_dataset
from curation.errors import CurateError
from curation.experiment.config import ExperimentConfig
from curation.experiment.results import at_specificity_summary, compare_rows
from curation.schema import (
    GROUP_FIELD,
    LABEL_FIELD,
    ORIGIN_FIELD,
    REAL,
    SPLIT_FIELD,
    rare_class,
)


def fold_dataset_name(dataset: str, fold: int, n_folds: int) -> str:
    """The dataset a fold's study runs on."""
    return f"{dataset}-cv{fold}of{n_folds}"


def make_fold_datasets(config: ExperimentConfig) -> list[str]:
    """Create (or keep) one dataset per fold; returns their names.

    Raises:
        CurateError: more folds than groups holding the rare class, or a fold without one.
    """
    dataset = open_dataset(config.dataset)
    rare = rare_class(dataset)
    labelled = dataset.match(F(ORIGIN_FIELD) == REAL).exists(f"{LABEL_FIELD}.label")
    ids, labels, groups = labelled.values(["id", f"{LABEL_FIELD}.label", GROUP_FIELD])
    fold_of = stratified_group_folds(labels, groups, config.cv, rare=rare, seed=0)
    is_rare = np.array([label == rare for label in labels])
    missing = [f for f in range(config.cv) if not is_rare[fold_of == f].any()]
    if missing:
        raise CurateError(f"cv {config.cv}: fold(s) {missing} hold no rare sample; use fewer folds")
    names = []
    real = dataset.match(F(ORIGIN_FIELD) == REAL)
    for fold in range(config.cv):
        name = fold_dataset_name(config.dataset, fold, config.cv)
        names.append(name)
        if dataset_exists(name):
            continue
        split = fold_splits(fold_of, fold, config.cv)
        clone = real.clone(name, persistent=True)  # real labelled samples and the pool
        clone.set_values(SPLIT_FIELD, dict(zip(ids, split.tolist(), strict=True)), key_field="id")
    return names


def _pooled_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed precision, recall, F1 from summed confusion counts; AUC averaged."""
    seeds = rows[0]["seeds"]
    pooled: dict[str, list] = {"precision": [], "recall": [], "f1": [], "auc": []}
    for index in range(len(seeds)):
        tp = sum(r["counts"][index]["tp"] for r in rows)
        fp = sum(r["counts"][index]["fp"] for r in rows)
        fn = sum(r["counts"][index]["fn"] for r in rows)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        aucs = [r["auc"]["values"][index] for r in rows if r["auc"]["values"][index] is not None]
        pooled["precision"].append(precision)
        pooled["recall"].append(recall)
        pooled["f1"].append(f1)
        pooled["auc"].append(float(np.mean(aucs)) if aucs else None)
    return {metric: {**mean_std(values), "values": values} for metric, values in pooled.items()}


def _pooled_at_specificity(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per seed, the recall at the val-chosen threshold pooled over the folds' test samples."""
    if any(r.get("at_specificity") is None for r in rows):
        return None
    per_seed = zip(*(r["at_specificity"]["per_seed"] for r in rows), strict=True)
    return at_specificity_summary([pool_at_specificity(list(points)) for points in per_seed])


def pool_folds(fold_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One table row per arm with the metrics pooled over the folds (see the module doc) and
    ``fold_f1``: the mean F1 of each fold."""
    pooled_rows = []
    for index, row in enumerate(fold_results[0]["tables"]):
        rows = [result["tables"][index] for result in fold_results]
        pooled = {**row, **_pooled_metrics(rows)}
        pooled["counts"] = [
            {key: sum(r["counts"][index][key] for r in rows) for key in ("tp", "fp", "fn", "tn")}
            for index in range(len(row["seeds"]))
        ]
        pooled.update(count_intervals(pooled["counts"]))
        pooled["at_specificity"] = _pooled_at_specificity(rows)
        shares = [r["copy_share"] for r in rows if r.get("copy_share") is not None]
        if shares:  # the verdict reads the worst fold's share of copies
            pooled["copy_share"] = max(shares)
        pooled["fold_f1"] = [r["f1"]["mean"] for r in rows]
        pooled["n_train"] = round(float(np.mean([r["n_train"] for r in rows])))
        pooled["n_train_synthetic"] = round(float(np.mean([r["n_train_synthetic"] for r in rows])))
        pooled_rows.append(pooled)
    return pooled_rows


def run_cross_validated(
    config: ExperimentConfig, out: Path, echo, progress: bool, run_experiment
) -> dict:
    """Run the study on every fold's dataset with ``run_experiment`` (the fixed-split study)
    and pool the results (see the module doc)."""
    fold_results = []
    for fold, name in enumerate(make_fold_datasets(config)):
        echo(f"[cv] fold {fold + 1} of {config.cv}: dataset {name!r}")
        sub = dataclasses.replace(config, dataset=name, cv=None)
        fold_results.append(
            run_experiment(sub, out=out / f"fold_{fold}", echo=echo, progress=progress)
        )
    rows = pool_folds(fold_results)
    comparisons, verdicts = compare_rows(rows, config.name)
    return {
        "experiment": config.name,
        "dataset": config.dataset,
        "seeds": config.seeds,
        "cv": config.cv,
        "tables": rows,
        "comparisons": comparisons,
        "verdicts": verdicts,
        "fold_reports": [r["report"] for r in fold_results],
        "filter_counts": {
            f"fold {f}": r.get("filter_counts", {}) for f, r in enumerate(fold_results)
        },
    }
