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
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np

from brain.checkpoints import ModelCard, load_checkpoint, save_checkpoint
from brain.data import ImageSet, channel_stats, check_shapes, decode_view, digest
from brain.metrics import rare_class_metrics, summarise
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
from curation.schema import LABELLED_SPLITS, project_info, rare_class

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


def _check_labels(train: ImageSet, val: ImageSet, test: ImageSet, rare_index: int) -> None:
    for name, part in (("train", train), ("val", val), ("test", test)):
        missing = int(np.sum(part.labels < 0))
        if missing:
            raise CurateError(f"{missing} {name} samples have no label of the dataset's classes")
    if len(set(train.labels.tolist())) < 2:
        raise CurateError("the training data holds a single class; need at least two")
    for name, part in (("train", train), ("val", val), ("test", test)):
        if not np.any(part.labels == rare_index):
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
) -> tuple[ImageSet, ImageSet, ImageSet, tuple[int, int, int], str]:
    """Real train (plus ``with_view``), val and test sets, the common image shape and the
    digest of the real split."""
    parts = {
        part: decode_view(resolve_view(dataset, view), progress=progress, desc=view)
        for part, view in (("train", TRAIN_VIEW), ("val", VAL_VIEW), ("test", TEST_VIEW))
    }
    if with_view is not None:
        extra = decode_view(resolve_view(dataset, with_view), progress=progress, desc=with_view)
        _check_extra(with_view, extra, classes)
        parts["extra"] = extra
    shape = check_shapes([s for part in parts.values() for s in part.shapes], size)
    sets = {name: part.to_set(classes, size) for name, part in parts.items()}
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
) -> tuple[list[dict], list[str], np.ndarray]:
    """Train every seed into ``folder``; returns per-seed metrics, final checkpoint folders and
    the first seed's test probabilities."""
    per_seed, checkpoints, first_proba = [], [], None
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
        if first_proba is None:
            first_proba = proba
    return per_seed, checkpoints, first_proba


def _replace_folder(tmp: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


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
        size: pad each image to a centred square and resize to ``size x size``; without it all
            images must share one size.
        subset: train on a stratified subset of about this many training samples.
        patience: stop a seed after this many epochs without a better validation score.
        select: what picks the kept epoch on the val split: ``f1`` of the rare class (the
            protocol; ties broken by AUC, then loss), ``auc`` (as MedMNIST) or ``loss``.
        schedule: learning rate over epochs: ``constant`` (the protocol) or ``cosine`` decay.
        device: ``auto`` (GPU when visible), ``cpu`` or ``cuda``.
        num_threads: torch intra-op threads while training (``None``: torch's default).
        progress: progress bars on decoding, epochs and batches.

    Returns:
        ``run``, ``summary`` (``metric -> {mean, std, n}`` for precision, recall, f1, auc and
        accuracy of the rare class on the test split), ``per_seed``, ``checkpoints``,
        ``predictions_field``, ``eval_key`` and ``run_key``.

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
    if pretrained and not pretrained_path(arch).is_file():
        raise CurateError(f"--pretrained: no local {arch} weights at {pretrained_path(arch)}")
    dataset = open_dataset(dataset_name)
    classes, rare = _classes(dataset)
    rare_index = classes.index(rare)
    train, val, test, shape, split_digest = _load_sets(
        dataset, classes, with_view=with_view, size=size, progress=progress
    )
    n_available = len(train)
    if subset is not None and subset < len(train):
        train = train.subset(_stratified_subset(train.labels, subset, seed))
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
    seed_list = [seed + i for i in range(seeds)]
    final = run_folder(dataset_name, run)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with torch_threads(num_threads):
            per_seed, checkpoints, first_proba = _train_seeds(
                train,
                val,
                test,
                seeds=seed_list,
                settings=settings,
                card_fields=card_fields,
                rare_index=rare_index,
                folder=tmp,
                final=final,
                progress=progress,
            )
        _replace_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

    from brain.evaluation import store_predictions

    pred_field, eval_key = field_names(run)
    store_predictions(
        dataset,
        test.ids,
        first_proba,
        classes=classes,
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
        "subset": subset,
        "train_view": TRAIN_VIEW,
        "val_view": VAL_VIEW,
        "test_view": TEST_VIEW,
        "classes": classes,
        "rare_class": rare,
        "input_shape": list(shape),
        "resize": resize,
        "mean": card_fields["mean"],
        "std": card_fields["std"],
        "split_digest": split_digest,
        "data_digest": data_digest,
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
        "n_val": len(val),
        "n_test": len(test),
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
    return decoded.to_set(card.classes, size)


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
    return images.ids, proba[:, card.classes.index(card.rare_class)]
