"""The size policy: how images of any size become one network-sized square.

Wherever images feed a network, a generator, an SSIM comparison or an export, each is padded to
a centred square with :attr:`SizePolicy.pad` and resized to ``size x size``; without a size the
images are taken as they are (they must then share one size, and the padding plays no part).
The images on disk are never changed. A policy is checked when it is built, so a
:class:`SizePolicy` in hand is always valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from brain.data import DEFAULT_PAD, check_pad, check_size, fitted_images
from brain.errors import InputError


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
        return fitted_images(arrays, self.size, self.pad)

    def describe(self) -> str:
        """The policy in words (``32 px, pad border`` or ``images as they are``)."""
        return "images as they are" if self.size is None else f"{self.size} px, pad {self.pad}"
