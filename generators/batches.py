"""Training batches for the generators that train networks: draws, flips, turns and shifts.

Small rare classes: below :data:`FEW_TRAIN_IMAGES` (8) images, augmentation is heavier (flips,
right-angle rotations and shifts of up to a sixteenth of the side, see :func:`draw_batch`) and
:func:`few_images_warning` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generators.arrays import to_float

#: Below this many training images, augmentation is heavier and a warning is given.
FEW_TRAIN_IMAGES = 8


@dataclass
class TrainingData:
    """The arrays a training run draws batches from (validated by ``Generator.fit``)."""

    targets: np.ndarray
    sources: np.ndarray | None
    masks: np.ndarray | None


def random_flips(batch: np.ndarray, rng: np.random.Generator, masks: np.ndarray | None = None):
    """Flip each image (and its mask) horizontally and vertically with probability 1/2 each."""
    flips = rng.random((len(batch), 2)) < 0.5
    batch = batch.copy()
    masks = None if masks is None else masks.copy()
    for i, (horizontal, vertical) in enumerate(flips):
        for flip, axis in ((horizontal, 1), (vertical, 0)):
            if flip:
                batch[i] = np.flip(batch[i], axis=axis)
                if masks is not None:
                    masks[i] = np.flip(masks[i], axis=axis)
    return batch, masks


def shift_image(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``image`` (``(H, W, ...)``) moved down ``dy`` and right ``dx`` pixels (negative: up, left),
    the uncovered border filled by repeating the edge pixels (no black frame)."""
    height, width = image.shape[:2]
    ay, ax = abs(dy), abs(dx)
    widths = ((ay, ay), (ax, ax)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, widths, mode="edge")
    return padded[ay - dy : ay - dy + height, ax - dx : ax - dx + width]


def random_turns_and_shifts(
    batch: np.ndarray, rng: np.random.Generator, masks: np.ndarray | None = None
):
    """Rotate each square image (and its mask) by a random multiple of 90 degrees and shift it
    by up to ``max(1, S // 16)`` pixels each way (see :func:`shift_image`)."""
    count, size = len(batch), batch.shape[1]
    turns = rng.integers(0, 4, size=count)
    limit = max(1, size // 16)
    shifts = rng.integers(-limit, limit + 1, size=(count, 2))
    batch = batch.copy()
    masks = None if masks is None else masks.copy()
    for i, (k, (dy, dx)) in enumerate(zip(turns, shifts, strict=True)):
        batch[i] = shift_image(np.rot90(batch[i], k), dy, dx)
        if masks is not None:
            masks[i] = shift_image(np.rot90(masks[i], k), dy, dx)
    return batch, masks


def draw_batch(
    images: np.ndarray,
    rng: np.random.Generator,
    batch_size: int,
    *,
    flip: bool,
    masks: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``batch_size`` images drawn with replacement (with their masks), as floats in ``[-1, 1]``.

    With ``flip``, each image is flipped at random (:func:`random_flips`); when ``images`` holds
    fewer than :data:`FEW_TRAIN_IMAGES`, each is also turned and shifted at random
    (:func:`random_turns_and_shifts`). ``flip=False`` leaves the images as they are.
    """
    index = rng.integers(0, len(images), size=batch_size)
    batch = to_float(images[index])
    masks = None if masks is None else masks[index]
    if flip:
        batch, masks = random_flips(batch, rng, masks)
        if len(images) < FEW_TRAIN_IMAGES:
            batch, masks = random_turns_and_shifts(batch, rng, masks)
    return batch, masks


def few_images_warning(method: str, count: int, flip: bool) -> str | None:
    """The warning for a network trained on ``count`` rare-class images (``None`` from
    :data:`FEW_TRAIN_IMAGES` on)."""
    if count >= FEW_TRAIN_IMAGES:
        return None
    augmented = (
        "heavier augmentation is used (flips, right-angle rotations, small shifts)"
        if flip
        else "augmentation is off (flip=false)"
    )
    return (
        f"{method} trains on only {count} rare-class images (fewer than {FEW_TRAIN_IMAGES}): "
        f"{augmented}; expect outputs close to those images"
    )
