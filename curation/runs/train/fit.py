"""Train runs: train a classifier on a dataset, one network per seed, and store the run.

Training data is the real ``train`` split, optionally plus a curated view (``with_view``), so
baseline and curated runs share one code path. The ``val`` and ``test`` splits are real and never
trained on. A run ``R`` writes, on the dataset:

- one checkpoint per seed (``state_dict`` + JSON model card) under ``<media>/runs/R/seed_<s>/``
  (``fold_<f>/seed_<s>/`` when cross-validated);
- the first seed's test predictions in the field ``pred_R`` and a FiftyOne evaluation
  ``eval_R`` (shown in the App);
- the run record ``train_R`` (:class:`TrainConfig`, :class:`TrainResults`), listed by
  ``curate info`` and ``curate runs``.

Everything is validated and trained before anything is written: bad input stores nothing.
Training (:func:`fit_classifier`: reads the dataset, writes the checkpoints) and storing
(:func:`store_fitted`) are separate halves, so other processes can train while one process
stores every run (:mod:`curation.experiment.cluster`).
Deleting the run (``curate runs delete NAME train_R``) removes all three.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from typing import Any

import fiftyone as fo

from brain.classifier import (
    card_fields,
    check_labels,
    cross_validate,
    few_rare_warnings,
    fold_assignment,
    oversampled,
    sample_pairs,
    stratified_subset,
    task_probabilities,
    train_seeds,
)
from brain.data import ImageSet, channel_stats, digest
from brain.devices import resolve_device, torch_threads
from brain.distributed import plan_devices
from brain.metrics import summarise
from brain.settings import TrainSettings
from curation.datasets import as_dataset
from curation.errors import CurateError
from curation.leftovers import clean_folder_leftovers, replace_folder, temp_folder
from curation.names import check_run_name
from curation.runs.base import RunKind, register
from curation.runs.footprint import Footprint, own_folder
from curation.runs.train.data import read_classes, read_sets, sample_groups
from curation.runs.train.evaluation import store_predictions
from curation.runs.train.records import TrainConfig, TrainResults, field_names, run_folder
from curation.schema import LABEL_FIELD, run_size_policy


@register
class TrainKind(RunKind):
    """Train runs: the predictions field, the evaluation and the checkpoint folder."""

    kind = "train"
    config_type = TrainConfig
    results_type = TrainResults

    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        pred_field, eval_key = field_names(name)
        _, results = self.load(dataset, name)
        return Footprint(
            fields=[results.predictions_field or pred_field],
            evaluations=[results.eval_key or eval_key],
            files=own_folder(run_folder, dataset.name, name),
        )

    def execute(
        self,
        dataset: fo.Dataset,
        name: str,
        config: TrainConfig,
        *,
        overwrite: bool,
        num_threads: int | None = None,
        progress: bool = True,
    ) -> TrainResults:
        fitted = fit_classifier(
            dataset, name, config, overwrite=overwrite, num_threads=num_threads, progress=progress
        )
        return store_fitted(dataset, fitted)


TRAIN = TrainKind()


@dataclass
class FittedRun:
    """A train run that is trained (its checkpoints written) but not yet stored on the dataset:
    its records and the first seed's test probabilities over the task's classes. Plain data, so
    a worker process can train it and hand it to the one process that stores runs
    (:mod:`curation.experiment.cluster`)."""

    run: str
    config: TrainConfig
    results: TrainResults
    test_ids: list[str]
    proba: Any  # np.ndarray, (n_test, n_task_classes)


def train_classifier(
    dataset: fo.Dataset | str,
    run: str,
    settings: TrainSettings | None = None,
    *,
    seeds: int = 1,
    seed: int = 0,
    with_view: str | None = None,
    label_field: str | None = None,
    cv: int | None = None,
    oversample: int = 0,
    overwrite: bool = False,
    num_threads: int | None = None,
    progress: bool = True,
    **changes: Any,
) -> TrainResults:
    """Train and evaluate a ResNet classifier, one network per seed, and store the run.

    Builds the run's :class:`TrainConfig` (:meth:`TrainConfig.build`) and makes the run with
    :meth:`TrainKind.run`.

    Args:
        dataset: the project dataset (or its name).
        run: the run name (letters, digits, ``_``, ``-``); a rerun with the same settings
            replaces the run.
        settings: how each network is trained (:class:`~brain.settings.TrainSettings`:
            architecture, epochs, batch size, learning rate, augmentation, class weights,
            epoch selection, schedule, size policy, subset, device); its defaults when omitted.
        seeds: number of seeds (``seed``, ``seed + 1``, ...).
        seed: the first seed.
        with_view: a view (saved or built-in) whose samples join the real training split,
            e.g. curated synthetic samples; it may not hold val or test samples.
        label_field: learn the labels of this field instead of the task's (``ground_truth``),
            e.g. ``fine_label`` holding all 24 chromosome classes while the task is one of them
            against the rest: a richer feature space for the filters. Metrics, predictions and
            the epoch selection stay on the binary task (the rare-class probability is the sum
            over the fine classes inside it).
        cv: grouped, stratified ``cv``-fold cross-validation over all real labelled samples
            instead of the fixed split: each fold is tested once by networks trained on the
            other folds (the next fold picks the epoch), so every sample is tested exactly once;
            metrics are pooled over folds per seed, with the spread over folds in
            ``fold_summary``. For small rare classes (fewer than 5 rare val or test samples).
        oversample: add this many copies of real rare train images, drawn at random with
            replacement (seeded by ``seed``): the classic rebalancing baseline.
        overwrite: replace a stored run of this name that was asked other settings (without
            it such a rerun is refused).
        num_threads: torch intra-op threads while training (``None``: torch's default).
        progress: progress bars on decoding, epochs and batches.
        **changes: fields of ``settings`` to change (e.g. ``epochs=10, augment=True``).

    Returns:
        The :class:`TrainResults` (also stored under ``train_<run>``).

    Raises:
        InputError: for bad input (missing rare class in train, val or test, a single class,
            mixed image sizes without a size, unknown views or settings, a name reused with
            other settings); nothing is stored.
    """
    config = TrainConfig.build(
        settings,
        seeds=seeds,
        seed=seed,
        with_view=with_view,
        label_field=label_field,
        cv=cv,
        oversample=oversample,
        **changes,
    )
    return TRAIN.run(
        as_dataset(dataset),
        run,
        config,
        overwrite=overwrite,
        num_threads=num_threads,
        progress=progress,
    )


def fit_classifier(
    dataset: fo.Dataset | str,
    run: str,
    config: TrainConfig,
    *,
    overwrite: bool = False,
    num_threads: int | None = None,
    progress: bool = True,
) -> FittedRun:
    """The training half of a train run: resolve the config against the dataset (size policy,
    device, classes), check the key, read, train and write the checkpoint folder; the dataset
    itself is only read. :func:`store_fitted` stores the result."""
    check_run_name(run)
    dataset = as_dataset(dataset)
    settings = config.settings
    policy = run_size_policy(dataset, settings.size, settings.pad)
    settings = settings.replace(
        size=policy.size, pad=policy.pad, device=resolve_device(settings.device)
    )
    plan_devices(settings.devices, settings.device)  # more devices than the machine has
    classes = read_classes(dataset, config.label_field)
    with_view, oversample, cv = config.with_view, config.oversample, config.cv
    seed_list, seed = config.seeds, config.seeds[0]
    if classes.label_field != LABEL_FIELD and with_view is not None:
        raise CurateError(
            "training on fine labels cannot add `with_view` samples (no fine labels)",
            params=("with_view",),
        )
    asked = dataclasses.replace(config, **settings.as_dict(), label_field=classes.label_field)
    TRAIN.check_reuse(dataset, run, asked, overwrite=overwrite)
    sets = read_sets(
        dataset,
        classes,
        with_view=with_view,
        size=settings.size,
        pad=settings.pad,
        progress=progress,
    )
    train, val, test = sets.train, sets.val, sets.test
    n_available = len(train)
    if settings.subset is not None and settings.subset < len(train):
        train = train.subset(stratified_subset(train.labels, settings.subset, seed))
    if oversample:
        train = oversampled(train, classes.rare_index, oversample, seed)
    if cv is None:
        check_labels(train, val, test, classes.rare_index)

    data_digest = digest(sample_pairs(train), [sets.split_digest])
    stats = channel_stats(train.images)
    card = card_fields(settings, classes.outputs, classes.rare, sets.shape, stats, data_digest)
    if classes.label_field != LABEL_FIELD:
        card.update(label_field=classes.label_field, rare_outputs=classes.rare_index)
    final = run_folder(dataset.name, run)
    clean_folder_leftovers(final.parent)  # of killed trainings (see curation.leftovers)
    tmp = temp_folder(final)
    try:
        with torch_threads(num_threads):
            common = {
                "seeds": seed_list,
                "settings": settings,
                "card": card,
                "rare_index": classes.rare_index,
                "folder": tmp,
                "final": final,
                "progress": progress,
            }
            if cv is None:
                trained = train_seeds(train, val, test, **common)
            else:
                pooled = ImageSet.concat([train, val, test])
                fold_of = fold_assignment(
                    pooled, sample_groups(dataset, pooled.ids), cv, classes.rare_index, seed
                )
                trained = cross_validate(pooled, fold_of, **common)
        replace_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

    pred_field, eval_key = field_names(run)
    first_proba = trained.probas[0]
    if classes.label_field != LABEL_FIELD:
        first_proba = task_probabilities(
            first_proba, classes.rare_index, classes.task[0] == classes.rare
        )
    config = dataclasses.replace(
        asked,
        classes=classes.task,
        rare_class=classes.rare,
        label_field=classes.label_field,
        output_classes=classes.outputs,
        input_shape=list(sets.shape),
        resize=card["resize"],
        mean=card["mean"],
        std=card["std"],
        split_digest=sets.split_digest,
        data_digest=data_digest,
    )
    results = TrainResults(
        summary=summarise(trained.per_seed),
        per_seed=trained.per_seed,
        checkpoints=trained.checkpoints,
        predictions_field=pred_field,
        predictions_seed=seed_list[0],
        eval_key=eval_key,
        n_train=len(train),
        n_train_available=n_available,
        n_train_synthetic=int(sum(o == "synthetic" for o in train.origins)),
        n_train_oversampled=int(oversample),
        n_val=len(val),
        n_test=len(trained.test),
        cv=cv,
        folds=trained.folds,
        fold_summary=summarise([f["metrics"] for f in trained.folds]) if trained.folds else None,
        warnings=few_rare_warnings(val, trained.test, classes.rare_index, cv, trained.folds),
        run=run,
    )
    return FittedRun(run, config, results, list(trained.test.ids), first_proba)


def store_fitted(dataset: fo.Dataset, fitted: FittedRun) -> TrainResults:
    """Store a trained run on ``dataset``: the first seed's test predictions with their
    evaluation, then the run record (replacing an older run of that name)."""
    config, results = fitted.config, fitted.results
    store_predictions(
        dataset,
        fitted.test_ids,
        fitted.proba,
        classes=config.classes,
        rare_class=config.rare_class,
        field=results.predictions_field,
        eval_key=results.eval_key,
    )
    results.run_key = TRAIN.store(dataset, fitted.run, config, results)
    return results
