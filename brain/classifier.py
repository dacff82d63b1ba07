"""The classifier protocol: train on a view, pick epochs on the validation split, report the
rare class on the test split over several seeds, and store everything under a run name.

Training data is the real ``train`` split, optionally plus a curated view (``with_view``), so
baseline and curated runs share one code path. The ``val`` and ``test`` splits are real and never
trained on. A run stores, on the dataset:

- one checkpoint per seed (``state_dict`` + JSON model card) under
  ``<media>/runs/<run>/seed_<seed>/``;
- the first seed's test predictions in the field ``pred_<run>`` and a FiftyOne evaluation under
  ``eval_<run>`` (shown in the App);
- a run record ``train_<run>`` (config, seeds, data digests, per-seed and summary metrics,
  checkpoint paths), listed by ``curate info``.

Everything is validated and trained before anything is written: bad input stores nothing.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np

from brain.checkpoints import ModelCard, load_checkpoint, save_checkpoint
from brain.data import (
    DEFAULT_PAD,
    ImageSet,
    channel_stats,
    check_pad,
    check_shapes,
    decode_view,
    digest,
)
from brain.metrics import FEW_RARE, rare_class_metrics, summarise
from brain.models import ARCHITECTURES, pretrained_path
from brain.runs import load_run, run_key, store_run
from brain.training import (
    SCHEDULES,
    SELECTION,
    TrainSettings,
    channel_tensor,
    fit,
    resolve_device,
    run_network,
    torch_threads,
)
from curation.datasets import media_root, open_dataset, resolve_view
from curation.errors import CurateError
from curation.leftovers import clean_folder_leftovers, replace_folder, temp_folder
from curation.schema import (
    LABEL_FIELD,
    LABELLED_SPLITS,
    check_size,
    project_info,
    rare_class,
    size_policy,
)

TRAIN_VIEW, VAL_VIEW, TEST_VIEW = "real-train", "real-val", "real-test"


def field_names(run: str) -> tuple[str, str]:
    """``(predictions field, evaluation key)`` of train run ``run``."""
    suffix = run_key("train", run).removeprefix("train_")
    return f"pred_{suffix}", f"eval_{suffix}"


def run_folder(dataset_name: str, run: str) -> Path:
    """Where run ``run``'s checkpoints live (not created here)."""
    return media_root(dataset_name) / "runs" / run_key("train", run).removeprefix("train_")


def check_training_options(
    *,
    seeds: int,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    subset: int | None = None,
    select: str = "f1",
    schedule: str = "constant",
    arch: str = "resnet18",
) -> None:
    """Raise :class:`CurateError` naming the first training option out of range."""
    if seeds < 1 or epochs < 1:
        raise CurateError(f"--seeds and --epochs must be at least 1, got {seeds} and {epochs}")
    if batch_size < 2:
        raise CurateError(f"--batch-size must be at least 2, got {batch_size}")
    if not lr > 0:
        raise CurateError(f"--lr must be positive, got {lr}")
    if subset is not None and subset < 2:
        raise CurateError(f"--subset must be at least 2, got {subset}")
    if select not in SELECTION:
        raise CurateError(f"unknown --select {select!r}; choose from {', '.join(SELECTION)}")
    if schedule not in SCHEDULES:
        raise CurateError(f"unknown --schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    ARCHITECTURES.get(arch)


def _classes(dataset: fo.Dataset) -> tuple[list[str], str]:
    classes = list(project_info(dataset).get("classes", []))
    rare = rare_class(dataset)
    if len(classes) < 2:
        raise CurateError(f"dataset {dataset.name!r} has a single class ({classes}); need two")
    if rare not in classes:
        raise CurateError(f"dataset {dataset.name!r} has no rare class among {classes}")
    return classes, rare


def _fine_classes(
    dataset: fo.Dataset, label_field: str, task_classes: Sequence[str], rare: str
) -> tuple[list[str], list[int]]:
    """The classes of a fine-label field and the indices of those inside the rare class.

    Every fine class must lie inside one task class (e.g. chromosome 21 inside "21", the other
    chromosomes inside "other"), and the task must be binary.

    Raises:
        CurateError: missing field, a single fine class, fine classes spanning task classes,
            labelled real samples without a fine label, or a task of more than two classes.
    """
    from curation.schema import ORIGIN_FIELD, REAL

    if not dataset.has_sample_field(label_field):
        raise CurateError(f"label field {label_field!r} does not exist on dataset {dataset.name!r}")
    if len(task_classes) != 2:
        raise CurateError(
            f"training on fine labels needs a binary task, got classes {list(task_classes)}"
        )
    real = dataset.match(fo.ViewField(ORIGIN_FIELD) == REAL).exists(f"{LABEL_FIELD}.label")
    fine, task = real.values([f"{label_field}.label", f"{LABEL_FIELD}.label"])
    missing = sum(label is None for label in fine)
    if missing:
        raise CurateError(f"{missing} labelled real samples have no {label_field!r} label")
    owner: dict[str, set[str]] = {}
    for fine_label, task_label in zip(fine, task, strict=True):
        owner.setdefault(fine_label, set()).add(task_label)
    if len(owner) < 2:
        raise CurateError(f"label field {label_field!r} holds a single class; need at least two")
    mixed = sorted(label for label, parents in owner.items() if len(parents) > 1)
    if mixed:
        raise CurateError(
            f"fine classes {', '.join(mixed[:5])} of {label_field!r} belong to several task "
            "classes; each fine class must lie inside one"
        )
    classes = sorted(owner, key=_natural_key)
    return classes, [i for i, label in enumerate(classes) if rare in owner[label]]


def _natural_key(label: str) -> tuple:
    """Sort "2" before "10": numbers by value, then text."""
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def task_probabilities(proba: np.ndarray, rare_outputs: Sequence[int], rare_first: bool):
    """``(N, 2)`` probabilities of a binary task from a fine-label network's ``(N, K)`` ones."""
    rare = proba[:, list(rare_outputs)].sum(axis=1)
    columns = (rare, 1.0 - rare) if rare_first else (1.0 - rare, rare)
    return np.stack(columns, axis=1)


def _check_extra(name: str, decoded, classes: Sequence[str]) -> None:
    """A ``--with`` view may add training samples only: labelled, never val or test."""
    held_out = sum(split in LABELLED_SPLITS[1:] for split in decoded.splits)
    if held_out:
        raise CurateError(
            f"view {name!r} holds {held_out} val/test samples; training never uses those splits"
        )
    unknown = Counter(label for label in decoded.labels if label not in classes)
    if unknown:
        listed = ", ".join(f"{label}: {n}" for label, n in unknown.items())
        raise CurateError(f"view {name!r} has samples without a known class label ({listed})")


def _check_labels(
    train: ImageSet, val: ImageSet, test: ImageSet, rare_index: int | Sequence[int]
) -> None:
    for name, part in (("train", train), ("val", val), ("test", test)):
        missing = int(np.sum(part.labels < 0))
        if missing:
            raise CurateError(f"{missing} {name} samples have no label of the dataset's classes")
    if len(set(train.labels.tolist())) < 2:
        raise CurateError("the training data holds a single class; need at least two")
    for name, part in (("train", train), ("val", val), ("test", test)):
        if not np.any(np.isin(part.labels, rare_index)):
            raise CurateError(f"no rare-class sample in the {name} split")


def _pairs(part: ImageSet) -> list[tuple[str, int]]:
    """Sorted ``(sample id, label)`` pairs, what a digest is taken over."""
    return sorted(zip(part.ids, part.labels.tolist(), strict=True))


def _stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Positions of about ``size`` samples keeping class proportions (at least one per class)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for code in np.unique(labels):
        where = np.flatnonzero(labels == code)
        take = max(1, round(size * len(where) / len(labels)))
        chosen.append(rng.permutation(where)[:take])
    return np.sort(np.concatenate(chosen))


def _load_sets(
    dataset: fo.Dataset,
    classes: list[str],
    *,
    with_view: str | None,
    size: int | None,
    progress: bool,
    label_field: str = LABEL_FIELD,
    pad: str = DEFAULT_PAD,
) -> tuple[ImageSet, ImageSet, ImageSet, tuple[int, int, int], str]:
    """Real train (plus ``with_view``), val and test sets, the common image shape and the
    digest of the real split; labels from ``label_field``."""
    parts = {
        part: decode_view(
            resolve_view(dataset, view), progress=progress, desc=view, label_field=label_field
        )
        for part, view in (("train", TRAIN_VIEW), ("val", VAL_VIEW), ("test", TEST_VIEW))
    }
    if with_view is not None:
        extra = decode_view(resolve_view(dataset, with_view), progress=progress, desc=with_view)
        _check_extra(with_view, extra, classes)
        parts["extra"] = extra
    shape = check_shapes([s for part in parts.values() for s in part.shapes], size)
    sets = {name: part.to_set(classes, size, pad) for name, part in parts.items()}
    train = sets["train"]
    split_digest = digest(*(_pairs(sets[part]) for part in ("train", "val", "test")))
    if "extra" in sets:
        seen = set(train.ids)
        keep = [i for i, sample_id in enumerate(sets["extra"].ids) if sample_id not in seen]
        train = ImageSet.concat([train, sets["extra"].subset(keep)])
    return train, sets["val"], sets["test"], shape, split_digest


def _card(settings: TrainSettings, classes, rare, shape, resize, stats, data_digest) -> dict:
    return {
        "arch": settings.arch,
        "classes": list(classes),
        "rare_class": rare,
        "in_channels": int(shape[2]),
        "input_size": [int(shape[0]), int(shape[1])],
        "resize": resize,
        "mean": stats[0],
        "std": stats[1],
        "data_digest": data_digest,
    }


def _train_seeds(
    train: ImageSet,
    val: ImageSet,
    test: ImageSet,
    *,
    seeds: list[int],
    settings: TrainSettings,
    card_fields: dict,
    rare_index: int,
    folder: Path,
    final: Path,
    progress: bool,
) -> tuple[list[dict], list[str], list[np.ndarray]]:
    """Train every seed into ``folder``; returns per-seed metrics, final checkpoint folders and
    every seed's test probabilities."""
    per_seed, checkpoints, probas = [], [], []
    mean = channel_tensor(card_fields["mean"], settings.device)
    std = channel_tensor(card_fields["std"], settings.device)
    for seed in seeds:
        result = fit(
            train,
            val,
            num_classes=len(card_fields["classes"]),
            rare_index=rare_index,
            mean=card_fields["mean"],
            std=card_fields["std"],
            settings=settings,
            seed=seed,
            progress=progress,
        )
        proba = run_network(result.model, test.images, mean=mean, std=std, device=settings.device)
        metrics = rare_class_metrics(test.labels, proba, rare_index)
        card = ModelCard(**card_fields, seed=seed, best_epoch=result.best_epoch, metrics=metrics)
        save_checkpoint(result.model, card, folder / f"seed_{seed}")
        checkpoints.append(str(final / f"seed_{seed}"))
        per_seed.append(
            {
                "seed": seed,
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "val_f1": result.best_val.get("f1"),
                "val_auc": result.best_val.get("auc"),
                **metrics,
            }
        )
        probas.append(proba)
    return per_seed, checkpoints, probas


def _fold_assignment(dataset, train, val, test, cv, rare_index, seed) -> np.ndarray:
    """Grouped, stratified fold of every real labelled sample (train, val, test in order).

    Raises:
        CurateError: more folds than rare groups, or a fold without a rare sample.
    """
    from curation.schema import GROUP_FIELD
    from curation.splits import stratified_group_folds

    parts = ImageSet.concat([train, val, test])
    groups = dataset.select(parts.ids, ordered=True).values(GROUP_FIELD)
    rare = np.isin(parts.labels, rare_index)
    fold_of = stratified_group_folds(
        np.where(rare, "rare", parts.labels.astype(str)), groups, cv, rare="rare", seed=seed
    )
    lacking = [f for f in range(cv) if not rare[fold_of == f].any()]
    if lacking:
        raise CurateError(
            f"--cv {cv}: fold(s) {lacking} got no rare sample (the rare groups do not spread "
            "that far); use fewer folds"
        )
    return fold_of


def _cross_validate(
    pooled: ImageSet,
    fold_of: np.ndarray,
    *,
    seeds: list[int],
    settings: TrainSettings,
    card_fields: dict,
    rare_index: list[int],
    folder: Path,
    final: Path,
    progress: bool,
):
    """Train every seed on every fold; returns pooled per-seed metrics, checkpoints, pooled
    per-seed test probabilities, the pooled test set (every sample once) and per-fold metrics."""
    from curation.splits import fold_splits

    n_folds = int(fold_of.max()) + 1
    checkpoints, folds, tested, fold_probas = [], [], [], []
    for fold in range(n_folds):
        split = fold_splits(fold_of, fold, n_folds)
        train, val, test = (pooled.subset(np.flatnonzero(split == s)) for s in LABELLED_SPLITS)
        stats = channel_stats(train.images)
        per_seed, paths, probas = _train_seeds(
            train,
            val,
            test,
            seeds=seeds,
            settings=settings,
            card_fields={**card_fields, "mean": stats[0], "std": stats[1]},
            rare_index=rare_index,
            folder=folder / f"fold_{fold}",
            final=final / f"fold_{fold}",
            progress=progress,
        )
        checkpoints += paths
        tested.append(test)
        fold_probas.append(probas)
        folds.append(
            {
                "fold": fold,
                "n_train": len(train),
                "n_test": len(test),
                "n_test_rare": int(np.isin(test.labels, rare_index).sum()),
                "metrics": {name: entry["mean"] for name, entry in summarise(per_seed).items()},
            }
        )
    test = ImageSet.concat(tested)
    probas = [np.concatenate([p[i] for p in fold_probas]) for i in range(len(seeds))]
    per_seed = [
        {"seed": s, **rare_class_metrics(test.labels, proba, rare_index)}
        for s, proba in zip(seeds, probas, strict=True)
    ]
    return per_seed, checkpoints, probas, test, folds


def _oversampled(train: ImageSet, rare_index, count: int, seed: int) -> ImageSet:
    """``train`` plus ``count`` copies of its real rare samples drawn with replacement."""
    real_rare = np.flatnonzero(
        np.isin(train.labels, rare_index) & (np.array(train.origins, dtype=object) != "synthetic")
    )
    if count < 0 or not len(real_rare):
        raise CurateError(f"cannot oversample {count} copies of {len(real_rare)} real rare images")
    draws = np.random.default_rng(seed).choice(real_rare, size=count, replace=True)
    return ImageSet.concat([train, train.subset(draws)])


def _few_rare_warnings(val, test, rare_index, cv, folds) -> list[str]:
    """Warnings for metrics that rest on fewer than :data:`FEW_RARE` rare samples."""
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


def train_classifier(
    dataset_name: str,
    run: str,
    *,
    seeds: int = 1,
    seed: int = 0,
    epochs: int = 50,
    augment: bool = False,
    with_view: str | None = None,
    arch: str = "resnet18",
    pretrained: bool = False,
    class_weighted: bool = False,
    batch_size: int = 32,
    lr: float = 1e-3,
    size: int | None = None,
    subset: int | None = None,
    patience: int | None = None,
    select: str = "f1",
    schedule: str = "constant",
    label_field: str | None = None,
    pad: str | None = None,
    cv: int | None = None,
    oversample: int = 0,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate a ResNet classifier, one network per seed, and store the run.

    Args:
        dataset_name: the project dataset.
        run: the run name (letters, digits, ``_``, ``-``); an older run of that name is replaced.
        seeds: number of seeds (``seed``, ``seed + 1``, ...).
        seed: the first seed.
        epochs: epochs per seed (the best by validation F1 of the rare class is kept).
        augment: random flips, right-angle rotations and crops during training.
        with_view: a view (saved or built-in) whose samples join the real training split,
            e.g. curated synthetic samples; it may not hold val or test samples.
        arch: ``resnet18`` or ``resnet50``.
        pretrained: start from local ImageNet weights (never downloaded).
        class_weighted: inverse-frequency class weights in the loss.
        batch_size: training batch size.
        lr: Adam learning rate.
        size: pad each image to a centred square and resize to ``size x size``; default: the
            dataset's size policy (``curate config``), else all images must share one size.
        subset: train on a stratified subset of about this many training samples.
        patience: stop a seed after this many epochs without a better validation score.
        select: what picks the kept epoch on the val split: ``f1`` of the rare class (the
            protocol; ties broken by AUC, then loss), ``auc`` (as MedMNIST) or ``loss``.
        schedule: learning rate over epochs: ``constant`` (the protocol) or ``cosine`` decay.
        label_field: learn the labels of this field instead of the task's (``ground_truth``),
            e.g. ``fine_label`` holding all 24 chromosome classes while the task is one of them
            against the rest: a richer feature space for the filters. Metrics, predictions and
            the epoch selection stay on the binary task (the rare-class probability is the sum
            over the fine classes inside it).
        pad: how ``size`` pads images to a square: ``border`` (the image border's colour),
            ``edge``, ``reflect`` or ``constant:VALUE``; default: the dataset's policy, else
            ``border``.
        cv: grouped, stratified ``cv``-fold cross-validation over all real labelled samples
            instead of the fixed split: each fold is tested once by networks trained on the
            other folds (the next fold picks the epoch), so every sample is tested exactly once;
            metrics are pooled over folds per seed, with the spread over folds in
            ``fold_summary``. For small rare classes (fewer than 5 rare val or test samples).
        oversample: add this many copies of real rare train images, drawn at random with
            replacement (seeded by ``seed``): the classic rebalancing baseline.
        device: ``auto`` (GPU when visible), ``cpu`` or ``cuda``.
        num_threads: torch intra-op threads while training (``None``: torch's default).
        progress: progress bars on decoding, epochs and batches.

    Returns:
        ``run``, ``summary`` (``metric -> {mean, std, n}`` for precision, recall, f1, auc and
        accuracy of the rare class on the test split, or pooled over the folds),
        ``per_seed``, ``checkpoints``, ``predictions_field``, ``eval_key``, ``run_key``,
        ``cv``, ``folds`` and ``fold_summary`` (cross-validation) and ``warnings`` (metrics
        resting on fewer than 5 rare samples).

    Raises:
        CurateError: for bad input (missing rare class in train or val, a single class, mixed
            image sizes without ``size``, unknown views or options); nothing is stored then.
    """
    run_key("train", run)
    check_training_options(
        seeds=seeds,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        subset=subset,
        select=select,
        schedule=schedule,
        arch=arch,
    )
    if pad is not None:
        check_pad(pad)
    check_size(size)
    if cv is not None and (with_view is not None or subset is not None):
        raise CurateError("--cv trains on folds of the real data: it takes no --with or --subset")
    if cv is not None and cv < 2:
        raise CurateError(f"--cv needs at least 2 folds, got {cv}")
    if pretrained and not pretrained_path(arch).is_file():
        raise CurateError(f"--pretrained: no local {arch} weights at {pretrained_path(arch)}")
    dataset = open_dataset(dataset_name)
    policy_size, policy_pad = size_policy(dataset)
    size = size if size is not None else policy_size
    pad = pad or policy_pad
    task_classes, rare = _classes(dataset)
    label_field = label_field or LABEL_FIELD
    if label_field == LABEL_FIELD:
        classes, rare_index = task_classes, [task_classes.index(rare)]
    else:
        if with_view is not None:
            raise CurateError("training on fine labels cannot add --with samples (no fine labels)")
        classes, rare_index = _fine_classes(dataset, label_field, task_classes, rare)
    train, val, test, shape, split_digest = _load_sets(
        dataset,
        classes,
        with_view=with_view,
        size=size,
        progress=progress,
        label_field=label_field,
        pad=pad,
    )
    n_available = len(train)
    if subset is not None and subset < len(train):
        train = train.subset(_stratified_subset(train.labels, subset, seed))
    if oversample:
        train = _oversampled(train, rare_index, oversample, seed)
    if cv is None:
        _check_labels(train, val, test, rare_index)

    settings = TrainSettings(
        arch=arch,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        augment=augment,
        class_weighted=class_weighted,
        pretrained=pretrained,
        patience=patience,
        select=select,
        schedule=schedule,
        device=resolve_device(device),
    )
    data_digest = digest(_pairs(train), [split_digest])
    resize = "pad-resize" if size is not None else "none"
    card_fields = _card(
        settings, classes, rare, shape, resize, channel_stats(train.images), data_digest
    )
    card_fields["pad"] = pad
    if label_field != LABEL_FIELD:
        card_fields.update(label_field=label_field, rare_outputs=rare_index)
    seed_list = [seed + i for i in range(seeds)]
    final = run_folder(dataset_name, run)
    clean_folder_leftovers(final.parent)  # of killed trainings (see curation.leftovers)
    tmp = temp_folder(final)
    folds: list[dict] = []
    try:
        with torch_threads(num_threads):
            common = {
                "seeds": seed_list,
                "settings": settings,
                "card_fields": card_fields,
                "rare_index": rare_index,
                "folder": tmp,
                "final": final,
                "progress": progress,
            }
            if cv is None:
                per_seed, checkpoints, probas = _train_seeds(train, val, test, **common)
            else:
                fold_of = _fold_assignment(dataset, train, val, test, cv, rare_index, seed)
                per_seed, checkpoints, probas, test, folds = _cross_validate(
                    ImageSet.concat([train, val, test]), fold_of, **common
                )
        replace_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    first_proba = probas[0]
    warnings = _few_rare_warnings(val, test, rare_index, cv, folds)

    from brain.evaluation import store_predictions

    pred_field, eval_key = field_names(run)
    if label_field != LABEL_FIELD:
        first_proba = task_probabilities(first_proba, rare_index, task_classes[0] == rare)
    store_predictions(
        dataset,
        test.ids,
        first_proba,
        classes=task_classes,
        rare_class=rare,
        field=pred_field,
        eval_key=eval_key,
    )
    summary = summarise(per_seed)
    config = {
        **{k: v for k, v in asdict(settings).items()},
        "seeds": seed_list,
        "with_view": with_view,
        "size": size,
        "pad": pad,
        "subset": subset,
        "oversample": int(oversample),
        "train_view": TRAIN_VIEW,
        "val_view": VAL_VIEW,
        "test_view": TEST_VIEW,
        "classes": task_classes,
        "rare_class": rare,
        "label_field": label_field,
        "output_classes": classes,
        "input_shape": list(shape),
        "resize": resize,
        "mean": card_fields["mean"],
        "std": card_fields["std"],
        "split_digest": split_digest,
        "data_digest": data_digest,
        "cv": cv,
    }
    results = {
        "summary": summary,
        "per_seed": per_seed,
        "checkpoints": checkpoints,
        "predictions_field": pred_field,
        "predictions_seed": seed_list[0],
        "eval_key": eval_key,
        "n_train": len(train),
        "n_train_available": n_available,
        "n_train_synthetic": int(sum(o == "synthetic" for o in train.origins)),
        "n_train_oversampled": int(oversample),
        "n_val": len(val),
        "n_test": len(test),
        "cv": cv,
        "folds": folds,
        "fold_summary": summarise([f["metrics"] for f in folds]) if folds else None,
        "warnings": warnings,
    }
    key = store_run(dataset, "train", run, config, results)
    return {"run": run, "run_key": key, **results}


def load_classifier(dataset_name: str, run: str, *, seed_index: int = 0):
    """The network of seed number ``seed_index`` of train run ``run``, with its model card.

    Raises:
        CurateError: if the run, the seed or the checkpoint is missing, or the checkpoint does
            not fit the dataset's classes.
    """
    dataset = open_dataset(dataset_name)
    _, results = load_run(dataset, "train", run)
    checkpoints = results.get("checkpoints", [])
    if not 0 <= seed_index < len(checkpoints):
        raise CurateError(f"run {run!r} has {len(checkpoints)} seeds; no seed index {seed_index}")
    model, card = load_checkpoint(Path(checkpoints[seed_index]))
    classes = list(project_info(dataset).get("classes", []))
    card.check_data(classes, rare_class(dataset), [])
    return model, card


def read_for_card(
    dataset: fo.Dataset, view, card: ModelCard, *, progress: bool = False
) -> ImageSet:
    """Decode ``view`` (of ``dataset``) and shape its images as ``card``'s network expects.

    Raises:
        CurateError: if channels differ, or sizes differ and the card does not resize.
    """
    decoded = decode_view(view, progress=progress)
    card.check_data(
        list(project_info(dataset).get("classes", [])), rare_class(dataset), decoded.shapes
    )
    size = card.input_size[0] if card.resize == "pad-resize" else None
    return decoded.to_set(card.classes, size, card.pad)


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
    ``images`` (from :func:`read_for_card`) under ``card``'s network ``model``.

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


def predict_proba(
    dataset_name: str,
    run: str,
    view: str = TEST_VIEW,
    *,
    seed_index: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = False,
) -> tuple[list[str], np.ndarray]:
    """Rare-class probabilities of a view's samples under a train run's checkpoint.

    Args:
        dataset_name: the project dataset.
        run: a stored train run.
        view: a saved or built-in view (real or synthetic samples).
        seed_index: which seed's checkpoint (0: the first).
        batch_size: inference batch size.
        device: ``auto``, ``cpu`` or ``cuda``.
        num_threads: torch intra-op threads (``None``: torch's default).
        progress: show progress bars.

    Returns:
        ``(sample_ids, probabilities)`` in the view's order.
    """
    model, card = load_classifier(dataset_name, run, seed_index=seed_index)
    dataset = open_dataset(dataset_name)
    images = read_for_card(dataset, resolve_view(dataset, view), card, progress=progress)
    proba = run_checkpoint(
        model,
        card,
        images,
        batch_size=batch_size,
        device=device,
        num_threads=num_threads,
        progress=progress,
    )
    return images.ids, card.rare_probability(proba)
