"""The size policy: how images of any size become one network-sized square.

Wherever images feed a network, a generator, an SSIM comparison or an export, each is padded to
a centred square with :attr:`SizePolicy.pad` and resized to ``size x size``; without a size the
images are taken as they are (they must then share one size, and the padding plays no part).
The images on disk are never changed. A policy is checked when it is built, so a
:class:`SizePolicy` in hand is always valid. Importing this module does not import torch (the
schema, and with it every command, reads policies).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brain.errors import InputError

PAD_MODES = ("border", "edge", "reflect", "constant")
DEFAULT_PAD = "border"
MIN_SIZE, MAX_SIZE = 8, 1024


def check_size(size: int | None) -> int | None:
    """``size`` if it is ``None`` or within ``[MIN_SIZE, MAX_SIZE]`` pixels.

    Raises:
        InputError: a size outside that range.
    """
    if size is not None and not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise InputError(
            f"`size` must lie between {MIN_SIZE} and {MAX_SIZE} pixels, got {size}",
            params=("size",),
        )
    return size


def check_pad(pad: str) -> str:
    """``pad`` if it is a valid padding mode (``border``, ``edge``, ``reflect`` or
    ``constant:VALUE`` with VALUE in 0..255), else a :class:`InputError` listing them."""
    mode, _, value = str(pad).partition(":")
    valid = mode in PAD_MODES and (mode == "constant") == bool(value)
    if valid and mode == "constant":
        valid = value.isdigit() and 0 <= int(value) <= 255
    if not valid:
        raise InputError(
            f"unknown padding {pad!r}; use border (the colour of the image border), edge, "
            "reflect or constant:VALUE (0-255)"
        )
    return str(pad)


@dataclass(frozen=True)
class SizePolicy:
    """``size`` (pixels of the square side, 8-1024; ``None``: images as they are) and ``pad``
    (``border``, ``edge``, ``reflect`` or ``constant:VALUE``; only used with a size).

    Raises:
        InputError: a size outside 8-1024 pixels or an unknown padding mode.
    """

    size: int | None = None
    pad: str = DEFAULT_PAD

    def __post_init__(self) -> None:
        check_size(self.size)
        check_pad(self.pad)
        if self.size is not None:
            object.__setattr__(self, "size", int(self.size))

    @classmethod
    def resolve(
        cls, stored: SizePolicy, size: int | None = None, pad: str | None = None
    ) -> SizePolicy:
        """The policy a run uses: ``stored`` (the dataset's, or the run's it builds on) with the
        ``size`` and ``pad`` the run asks for instead, where given.

        Raises:
            InputError: a bad size or padding, or a padding asked for where no size applies.
        """
        resolved = size if size is not None else stored.size
        if pad is not None and resolved is None:
            check_pad(pad)
            raise InputError(
                f"`pad` {pad} needs a size: pass `size` N or set a size policy",
                params=("pad", "size"),
            )
        if resolved is None:
            return cls()
        return cls(resolved, pad if pad is not None else stored.pad)

    @classmethod
    def from_record(cls, data: Mapping[str, Any] | None) -> SizePolicy:
        """A policy from its stored form (``None`` or ``{}``: no size; a missing ``pad``: the
        default, as older records store ``None`` when no size applies)."""
        data = data or {}
        return cls(data.get("size"), data.get("pad") or DEFAULT_PAD)

    def as_record(self) -> dict[str, Any] | None:
        """The stored form: ``{"size": N, "pad": P}``, or ``None`` without a size."""
        return None if self.size is None else {"size": self.size, "pad": self.pad}

    def fit(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """``arrays`` as one ``uint8`` ``(N, H, W, C)`` array under this policy.

        Raises:
            InputError: images of different sizes without a size.
        """
        from brain.data import fitted_images  # torch loads only when images are fitted

        return fitted_images(arrays, self.size, self.pad)

    def describe(self) -> str:
        """The policy in words (``32 px, pad border`` or ``images as they are``)."""
        return "images as they are" if self.size is None else f"{self.size} px, pad {self.pad}"
