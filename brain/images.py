"""Reading images from disk as ``uint8`` arrays of shape ``(H, W, C)``.

One loader for every stage, so ingest, training, generation and SSIM all see the same pixels:

- 8-bit images are returned as they are; 16-bit images are scaled linearly from the full
  ``0..65535`` range to ``0..255`` (``round(x / 257)``), never clipped; float images must lie in
  ``[0, 1]`` and are scaled by 255.
- Grayscale gives ``C = 1``; RGB gives ``C = 3`` (an alpha channel is dropped: RGBA becomes RGB,
  grayscale + alpha becomes grayscale, the colour values are kept as stored, not blended; palette
  images are converted to RGB); multi-channel TIFFs keep all their channels, channel-first stacks
  (``C, H, W`` with ``C <= 8``) are moved to channel-last. :func:`has_alpha` tells whether a file
  has an alpha channel, so ingest can say it dropped one.
- Images need at least :data:`MIN_SIDE` pixels a side (:func:`check_min_side`).
- Images above :data:`LARGE_PIXELS` (PIL's decompression-bomb limit, about 9459 x 9459) are read
  as they are, without PIL's ``DecompressionBombWarning`` (ingest says so once, in its own
  words); PIL refuses images above twice that, which is a ``cannot read image`` error.
  :func:`check_max_pixels` refuses images above a limit the caller chooses.
- Source files are only ever read.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from brain.errors import InputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
TIFF_EXTENSIONS = frozenset({".tif", ".tiff"})
_MAX_CHANNELS_FIRST = 8
MIN_SIDE = 8
LARGE_PIXELS = 89_478_485  # PIL's Image.MAX_IMAGE_PIXELS: it warns above, refuses above twice
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has an image extension this project reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an integer or float image array to ``uint8`` without clipping (see the module)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.min(initial=0) < 0:
            raise InputError(f"negative pixel values in a {array.dtype} image")
        if array.max(initial=0) <= 255 and array.dtype.itemsize == 1:
            return array.astype(np.uint8)
        if array.max(initial=0) > 65535:
            raise InputError(f"pixel values above 65535 in a {array.dtype} image")
        return np.round(array.astype(np.float64) / 257.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InputError("non-finite pixel values in a float image")
        if array.min(initial=0.0) < 0.0 or array.max(initial=0.0) > 1.0:
            raise InputError("float images must have values in [0, 1]")
        return np.round(array * 255.0).astype(np.uint8)
    raise InputError(f"unsupported pixel type {array.dtype}")


def _channels_last(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        return array[:, :, None]
    if array.ndim == 3:
        if array.shape[0] <= _MAX_CHANNELS_FIRST and array.shape[-1] > _MAX_CHANNELS_FIRST:
            return np.moveaxis(array, 0, -1)
        return array
    squeezed = np.squeeze(array)
    if squeezed.ndim in (2, 3) and squeezed.ndim < array.ndim:
        return _channels_last(squeezed)
    raise InputError(f"unsupported image array of shape {array.shape}")


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    return tifffile.imread(path)


def _drops_alpha(image) -> bool:
    """Whether the loader drops an alpha channel of this open PIL image."""
    return image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)


@contextlib.contextmanager
def _no_bomb_warning() -> Iterator[None]:
    """PIL's ``DecompressionBombWarning`` silenced: ingest says it once, in its own words."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def _read_pil(path: Path, alpha: list[bool] | None = None) -> np.ndarray:
    from PIL import Image

    with _no_bomb_warning(), Image.open(path) as image:
        image.load()
        if alpha is not None:
            alpha.append(_drops_alpha(image))
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        if image.mode in ("RGBA", "LA"):
            image = image.convert(image.mode[:-1])
        if image.mode == "CMYK" or image.mode == "YCbCr":
            image = image.convert("RGB")
        if image.mode == "1":
            image = image.convert("L")
        return np.asarray(image)


def has_alpha(path: str | os.PathLike) -> bool:
    """Whether :func:`read_image` drops an alpha channel of this file (RGBA, grayscale + alpha,
    or a palette with transparency; TIFFs keep every channel). Reads the header only."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() in TIFF_EXTENSIONS:
        return False
    try:
        with _no_bomb_warning(), Image.open(path) as image:
            return _drops_alpha(image)
    except Exception:
        return False  # unreadable files are reported by read_image


def check_min_side(shape: Sequence[int], path: str | os.PathLike) -> None:
    """Refuse an ``(H, W, C)`` image smaller than :data:`MIN_SIDE` pixels a side.

    Raises:
        InputError: naming the file and its size.
    """
    height, width = shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InputError(
            f"image {path} is {height}x{width} pixels; images need at least {MIN_SIDE} a side"
        )


def check_max_pixels(shape: Sequence[int], path: str | os.PathLike, max_pixels: int) -> None:
    """Refuse an ``(H, W, C)`` image of more than ``max_pixels`` pixels.

    Raises:
        InputError: naming the file and its size.
    """
    height, width = shape[:2]
    if height * width > max_pixels:
        raise InputError(
            f"image {path} is {height}x{width} pixels ({height * width:,}), above "
            f"`max_pixels` {max_pixels:,}",
            params=("max_pixels",),
        )


def describe_shapes(shapes: Sequence[tuple[int, ...]], most: int = 4) -> str:
    """``"64x64x3: 10, 32x32x3: 2"``: the shapes seen and how often, most common first.

    Beyond ``most`` distinct shapes, the rest is summarised as a count and the range of heights
    and widths, so that the description stays one short line.
    """
    counts = Counter(tuple(s) for s in shapes)
    common = [f"{'x'.join(map(str, s))}: {n}" for s, n in counts.most_common(most)]
    if len(counts) <= most:
        return ", ".join(common)
    heights, widths = [s[0] for s in counts], [s[1] for s in counts]
    return (
        f"{len(counts)} shapes, heights {min(heights)}-{max(heights)}, widths "
        f"{min(widths)}-{max(widths)}; most common {', '.join(common)}"
    )


def read_image(path: str | os.PathLike, *, alpha: list[bool] | None = None) -> np.ndarray:
    """Read one image as a ``uint8`` ``(H, W, C)`` array (scaled as the module says).

    ``alpha``, when given, gets whether an alpha channel was dropped appended (what
    :func:`has_alpha` says, without opening the file a second time).

    Raises:
        InputError: if the file is missing, unreadable, corrupt or of an unsupported layout.
    """
    raw = read_array(path, alpha=alpha)
    try:
        return np.ascontiguousarray(to_uint8(raw))
    except InputError as error:
        raise InputError(f"cannot read image {path}: {error}") from None


def read_array(path: str | os.PathLike, *, alpha: list[bool] | None = None) -> np.ndarray:
    """Read one image as stored, without scaling: an ``(H, W, C)`` array of the file's dtype.

    For values that must stay as they are: instance label masks, and 16-bit intensities with a
    small range (which :func:`read_image` maps to a few grey levels); segmentation normalises
    intensities itself.

    Raises:
        InputError: if the file is missing, unreadable, corrupt or of an unsupported layout.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        if path.suffix.lower() in TIFF_EXTENSIONS:
            raw = _read_tiff(path)
            if alpha is not None:
                alpha.append(False)  # TIFFs keep every channel
        else:
            raw = _read_pil(path, alpha)
        return np.ascontiguousarray(_channels_last(np.asarray(raw)))
    except InputError as error:
        raise InputError(f"cannot read image {path}: {error}") from None
    except Exception as error:
        raise InputError(f"cannot read image {path}: {type(error).__name__}: {error}") from None


def write_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write a ``uint8`` ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array as PNG (atomically)."""
    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png expects uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] not in (3, 4):
        raise ValueError(f"PNG holds 1, 3 or 4 channels, got {array.shape[2]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)
