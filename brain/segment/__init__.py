"""Instance segmentation of whole images into per-object crops, on arrays.

- :mod:`brain.segment.base`: the :class:`Segmenter` interface and the ``SEGMENTERS`` registry.
- :mod:`brain.segment.classical`: scikit-image method (the offline default and fallback).
- :mod:`brain.segment.cellpose_backend`: Cellpose 4 on a local weights file.
- :mod:`brain.segment.scoring`: matched precision / recall / F1 / AP against ground truth.
- :mod:`brain.segment.crops`: per-instance crops, boxes and masks.

:func:`make_segmenter` turns the CLI's ``--model`` value (``cpsam``, ``classical`` or a path to a
Cellpose model file) into a segmenter; with no value it picks Cellpose when its weights are on
disk and the classical method otherwise.

Writing the crops and the whole images into datasets is :mod:`curation.segment.api`.
"""

from __future__ import annotations

from pathlib import Path

from brain.errors import InputError
from brain.segment.base import SEGMENTERS, Segmenter
from brain.segment.cellpose_backend import CPSAM, CellposeSegmenter, weights_available
from brain.segment.classical import ClassicalSegmenter
from brain.segment.scoring import SegmentationScores, score_instances

CLASSICAL = "classical"
MODEL_NAMES = (CPSAM, CLASSICAL)

__all__ = [
    "CLASSICAL",
    "MODEL_NAMES",
    "SEGMENTERS",
    "CellposeSegmenter",
    "ClassicalSegmenter",
    "SegmentationScores",
    "Segmenter",
    "default_model",
    "make_segmenter",
    "score_instances",
]


def default_model() -> str:
    """``"cpsam"`` when Cellpose and its cached weights are present, else ``"classical"``."""
    return CPSAM if weights_available(CPSAM) else CLASSICAL


def make_segmenter(
    model: str | None = None, *, diameter: float | None = None, gpu: bool | None = None
) -> Segmenter:
    """The segmenter for a ``--model`` value, validated (weights present) but not loaded.

    Args:
        model: ``"cpsam"``, ``"classical"``, a path to a Cellpose 4 model file, or ``None`` for
            :func:`default_model`.
        diameter: typical object diameter in pixels (``None``: estimated / model default).
        gpu: Cellpose only: use the GPU (``None``: when available).

    Raises:
        InputError: on an unknown name, a missing model file or missing Cellpose weights.
    """
    model = default_model() if model is None else str(model)
    if diameter is not None and not diameter > 0:
        raise InputError(f"diameter must be positive, got {diameter}")
    if model == CLASSICAL:
        return ClassicalSegmenter(diameter)
    if model != CPSAM and not (Path(model).suffix or "/" in model or Path(model).exists()):
        raise InputError(
            f"unknown model {model!r}; use {CPSAM}, {CLASSICAL} or a path to a Cellpose model file"
        )
    segmenter = CellposeSegmenter(model, diameter, gpu=gpu)
    segmenter.check()
    return segmenter
