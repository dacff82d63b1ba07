"""A train run's networks on a dataset: loading one to predict or embed any view (its stored
test predictions are :mod:`curation.runs.train.evaluation`'s)."""

from __future__ import annotations

from pathlib import Path

import fiftyone as fo
import numpy as np

from brain.checkpoints import ModelCard, load_checkpoint
from brain.classifier import run_checkpoint
from brain.data import ImageSet
from curation.datasets import as_dataset, decode_view, resolve_view
from curation.errors import CurateError
from curation.names import REAL_TEST
from curation.runs.train.fit import TRAIN
from curation.schema import project_info, rare_class

TEST_VIEW = REAL_TEST


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
    policy = card.size_policy
    return decoded.to_set(card.classes, policy.size, policy.pad)


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
