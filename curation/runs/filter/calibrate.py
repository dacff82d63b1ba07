"""Calibrating a filter's level by retraining, on a dataset: decode the real train and val
splits and the scored synthetic samples, then sweep (:func:`brain.filter_calibration.
calibrate_level`).

Calibration runs inside a filter run: its results are part of the filter run's record
(``calibration``) and it writes nothing of its own, so deleting the filter run deletes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import fiftyone as fo
import numpy as np

from brain.data import check_shapes
from brain.filter_calibration import (
    CalibrationSettings,
    LevelTrainer,
    RetrainCalibration,
    calibrate_level,
    sweep_grid,
)
from brain.size_policy import SizePolicy
from curation.datasets import builtin_views, decode_view, labelled
from curation.errors import CurateError
from curation.names import REAL_TRAIN, REAL_VAL
from curation.schema import project_info, rare_class


def level_trainer(
    dataset: fo.Dataset,
    synthetic_ids: Sequence[str],
    settings: CalibrationSettings,
    policy: SizePolicy,
) -> LevelTrainer:
    """A :class:`~brain.filter_calibration.LevelTrainer` on the dataset's labelled real train
    and val samples and the synthetic samples ``synthetic_ids``, under the filter run's size
    ``policy`` (the training settings' ``size`` and ``pad`` win).

    Raises:
        CurateError: no rare class, synthetic samples without a known label.
        InputError: mixed channel counts, or mixed sizes without a size.
    """
    classes = list(project_info(dataset).get("classes", []))
    rare = rare_class(dataset)
    if rare not in classes:
        raise CurateError(f"dataset {dataset.name!r} records no rare class among its classes")
    views = builtin_views(dataset)
    decoded = {
        "train": decode_view(labelled(views[REAL_TRAIN]), progress=False),
        "val": decode_view(labelled(views[REAL_VAL]), progress=False),
        "synthetic": decode_view(dataset.select(list(synthetic_ids), ordered=True), progress=False),
    }
    unknown = sum(label not in classes for label in decoded["synthetic"].labels)
    if unknown:
        raise CurateError(
            f"{unknown} synthetic samples have no known class label; calibration trains on them"
        )
    policy = SizePolicy.resolve(policy, settings.train.size, settings.train.pad)
    check_shapes([s for part in decoded.values() for s in part.shapes], policy.size)
    sets = {name: part.to_set(classes, policy.size, policy.pad) for name, part in decoded.items()}
    return LevelTrainer(
        sets["train"],
        sets["val"],
        sets["synthetic"],
        num_classes=len(classes),
        rare_index=classes.index(rare),
        settings=settings,
    )


def retrain_calibration(
    dataset: fo.Dataset,
    flt,
    synthetic_ids: Sequence[str],
    scores: np.ndarray,
    settings: CalibrationSettings,
    policy: SizePolicy,
) -> RetrainCalibration:
    """The level of the fitted filter ``flt`` whose passing synthetic samples give the best
    val F1 when added to the real train split (see :mod:`brain.filter_calibration`).

    Raises:
        InputError: bad settings or levels, or data the classifier cannot train on.
    """
    settings.check()
    sweep_grid(flt, settings)  # bad levels are refused before decoding anything
    trainer = level_trainer(dataset, synthetic_ids, settings, policy)
    return calibrate_level(flt, scores, trainer, settings)
