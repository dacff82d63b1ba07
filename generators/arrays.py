"""Image arrays as generators take them: checks, the ``[-1, 1]`` value range, per-sample noise.

Generators work on ``uint8`` batches ``(N, S, S, C)`` and compute on floats in ``[-1, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from brain.errors import InputError


def to_float(images: np.ndarray) -> np.ndarray:
    """``uint8`` images to float32 in ``[-1, 1]``."""
    return (np.asarray(images, dtype=np.float32) / 127.5 - 1.0).astype(np.float32)


def from_float(images: np.ndarray) -> np.ndarray:
    """Float images in ``[-1, 1]`` (clipped) to ``uint8``: the inverse of :func:`to_float`.

    (Not :func:`brain.images.to_uint8`, which scales stored pixel values of a file.)"""
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def check_images(
    images: Any, what: str, *, image_size: int | None = None, channels: int | None = None
) -> np.ndarray:
    """Validate a non-empty ``uint8`` batch ``(N, H, W, C)`` of square images of the given shape.

    Raises:
        InputError: naming ``what`` and the problem.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise InputError(f"{what} must be a batch (N, H, W, C), got shape {images.shape}")
    if images.shape[0] == 0:
        raise InputError(f"{what} is empty")
    if images.dtype != np.uint8:
        raise InputError(f"{what} must be uint8 images, got {images.dtype}")
    height, width, depth = images.shape[1:]
    if image_size is not None and (height, width) != (image_size, image_size):
        raise InputError(f"{what} are {height}x{width} but the generator works at {image_size}px")
    if height != width:
        raise InputError(f"{what} must be square, got {height}x{width}")
    if channels is not None and depth != channels:
        raise InputError(f"{what} have {depth} channels but the generator expects {channels}")
    return images


def check_seeds(seeds: Sequence[int], n: int) -> list[int]:
    """Validate one non-negative integer seed per source."""
    seeds = [int(s) for s in seeds]
    if len(seeds) != n:
        raise InputError(f"need one seed per source image: {len(seeds)} seeds for {n} sources")
    if any(s < 0 or s >= 2**63 for s in seeds):
        raise InputError("seeds must be integers in [0, 2**63)")
    return seeds


def seeded_rng(seed: int, *salt: int) -> np.random.Generator:
    """A numpy generator for one ``(seed, salt...)``: independent streams per sample."""
    return np.random.default_rng([int(seed), *map(int, salt)])
