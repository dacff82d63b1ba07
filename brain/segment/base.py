"""The segmenter interface: a whole image in, an instance label image out.

Every method (classical image processing, Cellpose) is a :class:`Segmenter` registered by name in
:data:`SEGMENTERS`. :meth:`Segmenter.segment` validates the image and the channel, hands one
float array to the method and checks what comes back, so methods only do the segmentation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from brain.errors import InputError
from brain.registry import Registry

SEGMENTERS: Registry[type[Segmenter]] = Registry("segmenter")


def as_hwc(image: np.ndarray) -> np.ndarray:
    """``image`` as an ``(H, W, C)`` array (a 2-D image gets ``C = 1``).

    Raises:
        InputError: if it is not a non-empty 2-D or 3-D array of real numbers.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or min(image.shape) == 0:
        raise InputError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputError(f"unsupported pixel type {image.dtype}")
    return image


def check_channel(image: np.ndarray, channel: int | None) -> None:
    """Raise :class:`InputError` if ``channel`` is not an index into ``image``'s channels."""
    n_channels = as_hwc(image).shape[2]
    if channel is not None and not 0 <= int(channel) < n_channels:
        raise InputError(
            f"channel {channel} out of range: the image has {n_channels} channel(s) "
            f"(0..{n_channels - 1})"
        )


def select_plane(image: np.ndarray, channel: int | None) -> np.ndarray:
    """The ``(H, W)`` float plane to segment: channel ``channel``, or the mean of all channels."""
    image = as_hwc(image)
    check_channel(image, channel)
    if channel is not None:
        return image[:, :, int(channel)].astype(np.float64)
    return image.astype(np.float64).mean(axis=2)


def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered ``1..n`` in order of first appearance in raster order, as ``int32``."""
    labels = np.asarray(labels)
    flat = labels.ravel()
    values, first = np.unique(flat, return_index=True)
    keep = values != 0
    order = np.argsort(first[keep])
    lut = np.zeros(int(values.max(initial=0)) + 1, dtype=np.int32)
    lut[values[keep][order]] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels].astype(np.int32, copy=False)


class Segmenter(ABC):
    """Finds object instances (nuclei, chromosomes) in a whole image.

    Subclasses implement :meth:`_segment`; parameters are stored unchanged in ``__init__``.
    """

    name: str = ""

    def segment(self, image: np.ndarray, channel: int | None = None) -> np.ndarray:
        """Segment ``image`` into instances.

        Args:
            image: ``(H, W, C)`` or ``(H, W)`` array (``uint8``, ``uint16`` or float).
            channel: the channel to segment; ``None`` lets the method use all channels.

        Returns:
            ``int32`` ``(H, W)`` label image: ``0`` is background, instances are ``1..n``.

        Raises:
            InputError: if the channel is out of range, the image is not an image, or no
                instance is found.
        """
        image = as_hwc(image)
        check_channel(image, channel)
        labels = np.asarray(self._segment(image, channel))
        if labels.shape != image.shape[:2]:
            raise RuntimeError(f"{type(self).__name__} returned shape {labels.shape}")
        labels = relabel_sequential(labels)
        if labels.max(initial=0) == 0:
            raise InputError(f"no instance found by the {self.name or 'segmenter'} method")
        return labels

    @abstractmethod
    def _segment(self, image: np.ndarray, channel: int | None) -> np.ndarray:
        """Label image for a validated ``(H, W, C)`` image (may be empty)."""
