"""Decoded images as ``uint8`` tensors with integer labels, and the one resize policy.

Images are decoded once per process with :func:`brain.images.read_image` and kept in a bounded
cache, so training epochs, predictions and embeddings never wait on PNG decoding.

Resize policy (stated once, applied everywhere):

- Without a target size, every image must have the same height, width and channel count; mixed
  sizes are refused with a message asking for ``--size``.
- With a target size ``S``, an image that is not ``S x S`` is padded to a centred square and
  resized to ``S x S`` (bilinear, antialiased). Aspect ratio is kept; nothing is cropped. The
  padding keeps the background by default (the median colour of the image border, see
  :func:`pad_to_square`); checkpoints record the padding they were trained with.
- Channel counts must agree across all images: a model has one input channel count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from brain.errors import InputError
from brain.images import describe_shapes
from brain.size_policy import DEFAULT_PAD, check_pad, check_size


@dataclass
class ImageSet:
    """Decoded images of a view, in the view's order.

    Attributes:
        ids: sample IDs.
        images: ``uint8`` tensor ``(N, C, H, W)``.
        labels: ``int64`` array of class indices (``-1`` where a sample has no label or one
            outside the class list).
        splits: the ``split`` field of each sample.
        origins: the ``origin`` field of each sample.
    """

    ids: list[str]
    images: torch.Tensor
    labels: np.ndarray
    splits: list[str | None]
    origins: list[str | None]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageSet:
        """The samples at positions ``index``."""
        index = np.asarray(index, dtype=np.int64)
        return ImageSet(
            [self.ids[i] for i in index],
            self.images[torch.from_numpy(index)],
            self.labels[index],
            [self.splits[i] for i in index],
            [self.origins[i] for i in index],
        )

    @staticmethod
    def concat(parts: Sequence[ImageSet]) -> ImageSet:
        """Join image sets of the same image shape."""
        return ImageSet(
            [i for p in parts for i in p.ids],
            torch.cat([p.images for p in parts]),
            np.concatenate([p.labels for p in parts]),
            [s for p in parts for s in p.splits],
            [o for p in parts for o in p.origins],
        )


def check_shapes(shapes: Sequence[tuple[int, int, int]], size: int | None) -> tuple[int, int, int]:
    """The ``(H, W, C)`` a set of ``(H, W, C)`` image shapes becomes under the resize policy.

    Raises:
        InputError: on mixed channel counts, or mixed sizes without ``size``.
    """
    if not shapes:
        raise InputError("no images to read")
    channels = {s[2] for s in shapes}
    if len(channels) > 1:
        raise InputError(f"images have mixed channel counts ({describe_shapes(shapes)})")
    if size is not None:
        check_size(size)
        return size, size, channels.pop()
    if len({s[:2] for s in shapes}) > 1:
        raise InputError(
            f"images have mixed sizes ({describe_shapes(shapes)}); pass `size`=N to pad each "
            "to a centred square and resize it to N x N",
            params=("size",),
        )
    return tuple(shapes[0])  # type: ignore[return-value]


def pad_to_square(image: torch.Tensor, pad: str = DEFAULT_PAD) -> torch.Tensor:
    """Pad a ``(C, H, W)`` ``uint8`` tensor to a centred square.

    ``pad``: ``border`` fills with the median colour of the image's outermost pixels (keeps a
    light or dark background), ``edge`` repeats the edge pixels, ``reflect`` mirrors the image,
    ``constant:VALUE`` fills with VALUE.
    """
    mode, _, value = check_pad(pad).partition(":")
    _, height, width = image.shape
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    widths = ((0, 0), (top, side - height - top), (left, side - width - left))
    array = image.numpy()
    if mode in ("edge", "reflect"):
        padded = np.pad(array, widths, mode="edge" if mode == "edge" else "symmetric")
    else:
        fill = np.full(array.shape[0], int(value or 0), dtype=np.uint8)
        if mode == "border":
            border = np.concatenate(
                [array[:, 0, :], array[:, -1, :], array[:, :, 0], array[:, :, -1]], axis=1
            )
            fill = np.median(border, axis=1).round().astype(np.uint8)
        padded = np.empty((array.shape[0], side, side), dtype=array.dtype)
        padded[:] = fill[:, None, None]
        padded[:, top : top + height, left : left + width] = array
    return torch.from_numpy(np.ascontiguousarray(padded))


def fit_image(array: np.ndarray, size: int | None, pad: str = DEFAULT_PAD) -> torch.Tensor:
    """A ``uint8`` ``(H, W, C)`` array as a ``(C, H, W)`` tensor, padded (``pad``, see
    :func:`pad_to_square`) and resized to ``size x size`` when it is not already that shape."""
    from torchvision.transforms.v2 import functional as TF

    image = torch.from_numpy(np.array(array)).permute(
        2, 0, 1
    )  # a copy: cached arrays are read-only
    if size is None or image.shape[1:] == (size, size):
        return image
    square = pad_to_square(image, pad)
    return TF.resize(square, [size, size], antialias=True)


def stack_images(
    arrays: Sequence[np.ndarray], size: int | None, pad: str = DEFAULT_PAD
) -> torch.Tensor:
    """Stack decoded images into one ``uint8`` ``(N, C, H, W)`` tensor (resize policy applied,
    padding with ``pad``)."""
    height, width, channels = check_shapes([a.shape for a in arrays], size)
    if all(a.shape == (height, width, channels) for a in arrays):
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    out = torch.empty((len(arrays), channels, height, width), dtype=torch.uint8)
    for index, array in enumerate(arrays):
        out[index] = fit_image(array, size, pad)
    return out


def fitted_images(
    arrays: Sequence[np.ndarray], size: int | None, pad: str = DEFAULT_PAD
) -> np.ndarray:
    """``arrays`` as one ``uint8`` ``(N, H, W, C)`` array under the resize policy."""
    return stack_images(arrays, size, pad).permute(0, 2, 3, 1).numpy()


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of a ``uint8`` ``(N, C, H, W)`` tensor, in
    ``[0, 1]`` units (the standard deviation is at least ``1e-3``)."""
    values = images.double().div_(255.0)
    mean = values.mean(dim=(0, 2, 3))
    std = values.std(dim=(0, 2, 3), unbiased=False).clamp_min(1e-3)
    return [float(m) for m in mean], [float(s) for s in std]


def normalise(
    batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, *, device: torch.device | str
) -> torch.Tensor:
    """A ``uint8`` ``(B, C, H, W)`` batch as normalised ``float32`` on ``device``
    (``mean`` and ``std`` are ``(1, C, 1, 1)`` tensors on ``device`` in ``[0, 1]`` units)."""
    batch = batch.to(device, non_blocking=True).float().div_(255.0)
    return batch.sub_(mean).div_(std)


def digest(*parts: Sequence) -> str:
    """A short SHA-256 digest of sequences of strings or numbers (order matters)."""
    hasher = hashlib.sha256()
    for part in parts:
        for item in part:
            hasher.update(str(item).encode())
            hasher.update(b"\x00")
        hasher.update(b"\x01")
    return hasher.hexdigest()[:16]
