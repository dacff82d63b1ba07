"""Cellpose (>= 4, Cellpose-SAM) instance segmentation, used when its weights are on disk.

Weights are never downloaded: ``model="cpsam"`` looks for the file Cellpose itself caches
(``cpsam_v2`` or ``cpsam`` in ``$CELLPOSE_LOCAL_MODELS_PATH``, default ``~/.cellpose/models``),
and any other value is a path to a Cellpose 4 model file (a fine-tuned or user model). Cellpose 4
cannot train a network from scratch, so without a weights file this backend cannot run: it says
so in one line and ``--model classical`` is the way on. The network runs on the GPU when torch
sees one (in bfloat16 there, float32 on the CPU).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from brain.errors import InputError
from brain.segment.base import SEGMENTERS, Segmenter

CPSAM = "cpsam"
CPSAM_FILES = ("cpsam_v2", "cpsam")  # names Cellpose 4 caches its Cellpose-SAM weights under
INSTALL_HINT = "install it with `pip install 'synthcurate[cellpose]'` (cellpose>=4)"


def cellpose_model_dir() -> Path:
    """Where Cellpose caches weights (same rule as ``cellpose.models.MODEL_DIR``)."""
    env = os.environ.get("CELLPOSE_LOCAL_MODELS_PATH")
    return Path(env) if env else Path.home() / ".cellpose" / "models"


def cellpose_installed() -> bool:
    """Whether the ``cellpose`` package can be imported (without importing it)."""
    return importlib.util.find_spec("cellpose") is not None


def find_weights(model: str = CPSAM) -> Path | None:
    """The weights file for ``model`` (``"cpsam"`` or a path), or ``None`` if there is none."""
    if model == CPSAM:
        for name in CPSAM_FILES:
            path = cellpose_model_dir() / name
            if path.is_file():
                return path
        return None
    path = Path(model).expanduser()
    return path if path.is_file() else None


def weights_available(model: str = CPSAM) -> bool:
    """Whether Cellpose is installed and ``model``'s weights are on disk."""
    return cellpose_installed() and find_weights(model) is not None


def missing_weights_message(model: str) -> str:
    """The one-line explanation when ``model``'s weights are not on disk."""
    if model == CPSAM:
        where = f"{cellpose_model_dir()} (looked for {' or '.join(CPSAM_FILES)})"
        return (
            f"Cellpose weights not found in {where}: they cannot be downloaded here and "
            "Cellpose 4 cannot train from scratch; copy the weights there, pass a model file "
            "with --model PATH, or use --model classical"
        )
    return (
        f"Cellpose model file not found: {model} (weights cannot be downloaded here and "
        "Cellpose 4 cannot train from scratch; use --model classical)"
    )


@contextlib.contextmanager
def _quiet_cellpose() -> Iterator[None]:
    """Silence Cellpose's import-time warnings about optional backbones we do not use."""
    loggers = [logging.getLogger(name) for name in ("cellpose.vit", "cellpose.models")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@SEGMENTERS.register("cellpose")
class CellposeSegmenter(Segmenter):
    """Cellpose 4 on a local weights file.

    Args:
        model: ``"cpsam"`` (the cached Cellpose-SAM weights) or a path to a Cellpose 4 model file.
        diameter: object diameter in pixels (Cellpose rescales the image to 30 px objects);
            ``None`` runs at the image's own scale.
        gpu: use the GPU; ``None`` uses it when torch sees one.
        flow_threshold: Cellpose's flow error threshold.
        cellprob_threshold: Cellpose's cell probability threshold.
        min_size: smallest instance kept, in pixels.
    """

    name = "cellpose"

    def __init__(
        self,
        model: str = CPSAM,
        diameter: float | None = None,
        *,
        gpu: bool | None = None,
        flow_threshold: float = 0.4,
        cellprob_threshold: float = 0.0,
        min_size: int = 15,
    ) -> None:
        self.model = model
        self.diameter = diameter
        self.gpu = gpu
        self.flow_threshold = flow_threshold
        self.cellprob_threshold = cellprob_threshold
        self.min_size = min_size

    def check(self) -> Path:
        """Validate without loading: Cellpose installed, weights on disk, diameter positive.

        Returns:
            The weights file.

        Raises:
            InputError: with a one-line reason otherwise.
        """
        if self.diameter is not None and not self.diameter > 0:
            raise InputError(f"diameter must be positive, got {self.diameter}")
        if not cellpose_installed():
            raise InputError(f"Cellpose is not installed: {INSTALL_HINT}")
        weights = find_weights(self.model)
        if weights is None:
            raise InputError(missing_weights_message(self.model))
        return weights

    def _load(self):
        """The ``cellpose.models.CellposeModel``, built once (kept in ``model_``)."""
        if getattr(self, "model_", None) is not None:
            return self.model_
        weights = self.check()
        import torch

        with _quiet_cellpose():
            from cellpose import models

        use_gpu = torch.cuda.is_available() if self.gpu is None else bool(self.gpu)
        try:
            self.model_ = models.CellposeModel(
                gpu=use_gpu, pretrained_model=os.fspath(weights), use_bfloat16=use_gpu
            )
        except Exception as error:  # a file that is not a Cellpose 4 model
            raise InputError(
                f"cannot load Cellpose model {weights}: {type(error).__name__}: {error}"
            ) from None
        self.weights_ = weights
        return self.model_

    def _segment(self, image: np.ndarray, channel: int | None) -> np.ndarray:
        if channel is not None:
            image = image[:, :, [int(channel)]]
        elif image.shape[2] > 3:
            raise InputError(
                f"Cellpose takes at most 3 channels; the image has {image.shape[2]}: "
                "choose one with --channel"
            )
        model = self._load()
        masks, _flows, _styles = model.eval(
            image.astype(np.float32),
            channel_axis=-1,
            diameter=self.diameter,
            flow_threshold=self.flow_threshold,
            cellprob_threshold=self.cellprob_threshold,
            min_size=self.min_size,
        )
        return np.asarray(masks, dtype=np.int32)
