"""Source images for a generator, read from image files at one square size.

With a size, each image is padded to a centred square with the given padding, keeping the
background, and resized (``brain.data.fit_image``: the size policy); masks are fitted the same
way. The files themselves are only read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brain.data import fit_image, fitted_images
from brain.images import read_image
from brain.size_policy import DEFAULT_PAD


def read_images(
    paths: Sequence[str], size: int | None = None, pad: str = DEFAULT_PAD
) -> np.ndarray:
    """The images at ``paths`` as one ``uint8`` ``(N, H, W, C)`` array; with ``size``, each padded
    to a centred square with ``pad`` and resized to ``size x size`` (the size policy)."""
    arrays = [read_image(p) for p in paths]
    if size is None:
        return np.stack(arrays)
    return fitted_images(arrays, size, pad)


def fit_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A ``bool (H, W)`` mask padded with ``False`` to a centred square and resized to
    ``size x size`` (as ``brain.data.fit_image`` fits its image; a pixel stays in the region
    where at least half of it was)."""
    image = (mask.astype(np.uint8) * 255)[..., None]
    return fit_image(image, size, "constant:0")[0].numpy() >= 128
