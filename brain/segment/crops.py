"""Per-instance crops from a whole image and its instance label image.

A crop is a square window centred on the instance's bounding box, ``size`` x ``size`` pixels
at the image's own scale, so objects keep their relative sizes; an instance that does not fit
with ``pad`` pixels of margin on every side is shrunk to fit. Pixels of the window outside the
image are 0. With ``mask_background`` every pixel outside the instance is set to 0, which hides
neighbours that reach into the window.

Boxes follow FiftyOne: ``bbox`` is ``[x, y, width, height]`` relative to the parent image size,
and the instance mask covers that box only (``True`` inside the instance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from brain.errors import InputError


@dataclass(frozen=True)
class InstanceCrop:
    """One instance cut out of its parent image.

    Attributes:
        label: the instance's value in the label image.
        image: ``uint8`` ``(size, size, C)`` crop.
        crop_mask: ``bool`` ``(size, size)`` instance mask in crop coordinates.
        bbox: ``[x, y, width, height]`` of the instance in the parent, relative to its size.
        box: ``(x0, y0, x1, y1)`` pixel box of the instance in the parent (end exclusive).
        mask: ``bool`` instance mask over ``box`` (what a FiftyOne ``Detection`` stores).
        window: ``(x0, y0, side)``: the parent window the crop shows before resizing.
        area: instance area in parent pixels.
    """

    label: int
    image: np.ndarray
    crop_mask: np.ndarray
    bbox: tuple[float, float, float, float]
    box: tuple[int, int, int, int]
    mask: np.ndarray
    window: tuple[int, int, int]
    area: int


def display_uint8(image: np.ndarray) -> np.ndarray:
    """``image`` as ``uint8`` for crops: 8-bit as it is, otherwise a linear min..max stretch.

    Integer images of more than 8 bits and float images are mapped per image (one minimum and
    one maximum over all channels), never clipped, so low-contrast 16-bit microscopy stays
    visible.
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    values = image.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(image.shape, np.uint8)
    return np.round((values - low) / (high - low) * 255.0).astype(np.uint8)


def _window(box: tuple[int, int, int, int], size: int, pad: int) -> tuple[int, int, int]:
    """Square window ``(x0, y0, side)`` centred on ``box``: ``size``, or larger to fit with pad."""
    x0, y0, x1, y1 = box
    side = max(size, max(x1 - x0, y1 - y0) + 2 * pad)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return int(np.floor(cx - side / 2)), int(np.floor(cy - side / 2)), side


def _cut(array: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """``array[y0:y0+side, x0:x0+side]`` with zeros where the window leaves the array."""
    height, width = array.shape[:2]
    out = np.zeros((side, side, *array.shape[2:]), array.dtype)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, width), min(y0 + side, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = array[sy0:sy1, sx0:sx1]
    return out


def _resize(array: np.ndarray, size: int, *, is_mask: bool) -> np.ndarray:
    if array.shape[0] == size:
        return array
    from skimage.transform import resize

    if is_mask:
        return resize(array.astype(np.float64), (size, size), order=1, anti_aliasing=False) >= 0.5
    out = resize(
        array.astype(np.float64),
        (size, size, *array.shape[2:]),
        order=1,
        anti_aliasing=True,
        preserve_range=True,
    )
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def check_crop_params(size: int, pad: int) -> None:
    """Raise :class:`InputError` unless ``size >= 8`` and ``0 <= pad < size / 2``."""
    if int(size) < 8:
        raise InputError(f"crop size must be >= 8 pixels, got {size}")
    if not 0 <= int(pad) < int(size) / 2:
        raise InputError(f"pad must be >= 0 and below half the crop size ({size}), got {pad}")


def extract_crops(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    size: int = 64,
    pad: int = 4,
    mask_background: bool = False,
) -> list[InstanceCrop]:
    """One crop per instance of ``labels``, in increasing label order.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` image (any dtype; see :func:`display_uint8`).
        labels: ``(H, W)`` integer label image (``0`` = background).
        size: side of the square crops in pixels.
        pad: minimum margin around the instance, in parent pixels, before any shrinking.
        mask_background: set every pixel outside the instance to 0.

    Raises:
        InputError: if the image and the label image differ in size, or on bad parameters.
    """
    check_crop_params(size, pad)
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise InputError(
            f"mask size mismatch: labels {labels.shape[1]}x{labels.shape[0]}, "
            f"image {image.shape[1]}x{image.shape[0]} (width x height)"
        )
    pixels = display_uint8(image)
    height, width = labels.shape
    crops = []
    for label, found in enumerate(ndi.find_objects(labels), start=1):
        if found is None:
            continue
        rows, cols = found
        box = (cols.start, rows.start, cols.stop, rows.stop)
        mask = labels[found] == label
        x0, y0, side = _window(box, size, pad)
        full_mask = np.zeros((side, side), bool)
        full_mask[rows.start - y0 : rows.stop - y0, cols.start - x0 : cols.stop - x0] = mask
        window = _cut(pixels, x0, y0, side)
        if mask_background:
            window = window * full_mask[:, :, None]
        crops.append(
            InstanceCrop(
                label=label,
                image=_resize(window, size, is_mask=False),
                crop_mask=_resize(full_mask, size, is_mask=True),
                bbox=(
                    box[0] / width,
                    box[1] / height,
                    (box[2] - box[0]) / width,
                    (box[3] - box[1]) / height,
                ),
                box=box,
                mask=mask.copy(),
                window=(x0, y0, side),
                area=int(mask.sum()),
            )
        )
    return crops
