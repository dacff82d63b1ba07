"""A train run's networks on a dataset: their stored test predictions (a Classification field
and a FiftyOne evaluation, so the App shows which test samples they get wrong), and loading a
network to predict or embed any view."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import fiftyone as fo
import numpy as np

from brain.checkpoints import ModelCard, load_checkpoint
from brain.classifier import run_checkpoint
from brain.data import ImageSet
from curation.datasets import as_dataset, decode_view, resolve_view
from curation.errors import CurateError
from curation.names import REAL_TEST
from curation.runs.train_records import TRAIN
from curation.schema import LABEL_FIELD, project_info, rare_class

TEST_VIEW = REAL_TEST


def make_predictions(proba: np.ndarray, classes: Sequence[str]) -> list[fo.Classification]:
    """One ``fo.Classification`` per row of ``proba``: the most probable class, its
    probability as ``confidence`` and the log-probabilities as ``logits``."""
    proba = np.asarray(proba, dtype=np.float64)
    best = proba.argmax(axis=1)
    logits = np.log(np.clip(proba, 1e-12, 1.0))
    return [
        fo.Classification(label=classes[b], confidence=float(p[b]), logits=row.tolist())
        for b, p, row in zip(best, proba, logits, strict=True)
    ]


def clear_predictions(dataset: fo.Dataset, field: str, eval_key: str) -> None:
    """Remove an older prediction field and evaluation of the same run, if any."""
    if eval_key in dataset.list_evaluations():
        dataset.delete_evaluation(eval_key)
    if dataset.has_sample_field(field):
        dataset.delete_sample_field(field)


def store_predictions(
    dataset: fo.Dataset,
    ids: Sequence[str],
    proba: np.ndarray,
    *,
    classes: Sequence[str],
    rare_class: str,
    field: str,
    eval_key: str,
) -> dict:
    """Write predictions on samples ``ids`` into ``field`` and evaluate them under ``eval_key``
    (FiftyOne's ``binary`` method with the rare class as positive for two classes, ``simple``
    otherwise); replaces an older field and evaluation of those names.

    Returns:
        FiftyOne's report of the evaluation (``classification_report`` as a dict).
    """
    clear_predictions(dataset, field, eval_key)
    predictions = make_predictions(proba, classes)
    dataset.set_values(field, dict(zip(ids, predictions, strict=True)), key_field="id")
    view = dataset.select(list(ids))
    if len(classes) == 2:
        negative = next(c for c in classes if c != rare_class)
        results = view.evaluate_classifications(
            field,
            gt_field=LABEL_FIELD,
            eval_key=eval_key,
            method="binary",
            classes=[negative, rare_class],
            progress=False,
        )
    else:
        results = view.evaluate_classifications(
            field, gt_field=LABEL_FIELD, eval_key=eval_key, method="simple", progress=False
        )
    return results.report()


def load_classifier(dataset: fo.Dataset | str, run: str, *, seed_index: int = 0):
    """The network of seed number ``seed_index`` of train run ``run``, with its model card.

    Raises:
        CurateError: if the run or the seed is missing.
        InputError: a missing checkpoint, or one that does not fit the dataset's classes.
    """
    dataset = as_dataset(dataset)
    _, results = TRAIN.load(dataset, run)
    checkpoints = results.checkpoints
    if not 0 <= seed_index < len(checkpoints):
        raise CurateError(f"run {run!r} has {len(checkpoints)} seeds; no seed index {seed_index}")
    model, card = load_checkpoint(Path(checkpoints[seed_index]))
    classes = list(project_info(dataset).get("classes", []))
    card.check_data(classes, rare_class(dataset), [])
    return model, card


def read_for_card(
    dataset: fo.Dataset, view: fo.DatasetView, card: ModelCard, *, progress: bool = False
) -> ImageSet:
    """Decode ``view`` (of ``dataset``) and shape its images as ``card``'s network expects.

    Raises:
        InputError: if channels differ, or sizes differ and the card does not resize.
    """
    decoded = decode_view(view, progress=progress)
    card.check_data(
        list(project_info(dataset).get("classes", [])), rare_class(dataset), decoded.shapes
    )
    size = card.input_size[0] if card.resize == "pad-resize" else None
    return decoded.to_set(card.classes, size, card.pad)


def predict_proba(
    dataset: fo.Dataset | str,
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
        dataset: the project dataset (or its name).
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
    dataset = as_dataset(dataset)
    model, card = load_classifier(dataset, run, seed_index=seed_index)
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
