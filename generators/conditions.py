"""Conditions: what the generator's input ``y`` is, computed from an image.

A condition maps a batch of images ``x`` (float32, ``(N, H, W, C)``, values in ``[-1, 1]``) to a
batch ``y`` of the same shape. For training pairs it is applied to rare-class targets
(``x0 -> y = c(x0)``); at generation it is applied to the source images, so the generator sees the
same kind of input in both cases.

- ``channel``: one channel (DAPI = blue = index 2 in the FISH case) repeated to all channels.
- ``grayscale``: the channel mean repeated to all channels.
- ``blur``: a Gaussian blur of each channel (``sigma`` in pixels).
- ``masked``: a region replaced by uniform noise in ``[-1, 1]`` (the colposcopy method). The region
  comes from ``masks`` (``True`` = noised out) or, when none are given, from random boxes.

A condition spec is a name with an optional parameter after a colon: ``"channel:2"``,
``"blur:3"``, ``"masked"``, ``"grayscale"``. On one-channel images ``channel:0`` and ``grayscale``
are the identity (``y = x``); :func:`condition_options` lists what applies to a channel count, and
each generator narrows that list (``Generator.condition_problem``).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from brain.errors import InputError
from brain.registry import Registry

CONDITIONS: Registry[type[Condition]] = Registry("condition")

#: Random boxes cover between these fractions of the image side.
BOX_SIDE_FRACTIONS = (0.25, 0.5)


def random_boxes(
    n: int,
    image_size: int,
    rng: np.random.Generator,
    side_fractions: tuple[float, float] = BOX_SIDE_FRACTIONS,
) -> np.ndarray:
    """``n`` masks ``(n, S, S)`` (``True`` inside) with one random axis-aligned box each."""
    masks = np.zeros((n, image_size, image_size), dtype=bool)
    low, high = (max(1, round(f * image_size)) for f in side_fractions)
    for i in range(n):
        h, w = rng.integers(low, high + 1, size=2)
        top = rng.integers(0, image_size - h + 1)
        left = rng.integers(0, image_size - w + 1)
        masks[i, top : top + h, left : left + w] = True
    return masks


def check_masks(masks: np.ndarray, n: int, image_size: int) -> np.ndarray:
    """Validate user masks: ``(n, S, S)`` (or ``(n, S, S, 1)``), any dtype, nonzero = region.

    Raises:
        InputError: on a wrong count or size.
    """
    masks = np.asarray(masks)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.ndim != 3 or masks.shape[0] != n:
        raise InputError(
            f"expected {n} masks of {image_size}x{image_size}, got shape {masks.shape}"
        )
    if masks.shape[1:] != (image_size, image_size):
        raise InputError(
            f"masks are {masks.shape[1]}x{masks.shape[2]} but images are {image_size}x{image_size}"
        )
    return masks != 0


class Condition:
    """Base class: ``condition(x, rng, masks=None) -> y`` on float ``(N, H, W, C)`` in ``[-1, 1]``.

    Subclasses set ``name`` and, if they take one, ``param`` (the name of their one parameter,
    given in a spec after a colon).
    """

    name: ClassVar[str] = ""
    param: ClassVar[str | None] = None
    uses_masks: ClassVar[bool] = False

    @classmethod
    def options(cls, channels: int) -> list[Condition]:
        """The conditions of this kind for ``channels``-channel images (one per parameter value
        that matters; the default parameter otherwise)."""
        return [cls()]

    def validate(self, channels: int) -> None:
        """Raise :class:`InputError` if the condition cannot apply to ``channels`` channels."""

    def is_identity(self, channels: int) -> bool:
        """Whether ``y = x`` on ``channels``-channel images (nothing to learn from the pair)."""
        return False

    def usage(self) -> str:
        """The spec as listed to users (a placeholder for a free parameter)."""
        return self.spec()

    def __call__(
        self, x: np.ndarray, rng: np.random.Generator, masks: np.ndarray | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def spec(self) -> str:
        """The spec string that rebuilds this condition with :func:`make_condition`."""
        if self.param is None:
            return self.name
        return f"{self.name}:{getattr(self, self.param)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.spec() == self.spec()

    def __hash__(self) -> int:
        return hash(self.spec())


@CONDITIONS.register("channel")
class ChannelCondition(Condition):
    """One channel repeated to all channels (``channel:2`` = blue = DAPI in the FISH case)."""

    name = "channel"
    param = "channel"

    def __init__(self, channel: int = 2) -> None:
        self.channel = int(channel)

    @classmethod
    def options(cls, channels: int) -> list[Condition]:
        return [cls(index) for index in range(channels)]

    def is_identity(self, channels: int) -> bool:
        return channels == 1

    def validate(self, channels: int) -> None:
        if not 0 <= self.channel < channels:
            raise InputError(
                f"channel index {self.channel} is out of range for {channels}-channel images"
            )

    def __call__(self, x, rng, masks=None):
        return np.repeat(x[..., self.channel : self.channel + 1], x.shape[-1], axis=-1)


@CONDITIONS.register("grayscale")
class GrayscaleCondition(Condition):
    """The mean of the channels, repeated to all channels."""

    name = "grayscale"

    def is_identity(self, channels: int) -> bool:
        return channels == 1

    def __call__(self, x, rng, masks=None):
        return np.repeat(x.mean(axis=-1, keepdims=True), x.shape[-1], axis=-1).astype(np.float32)


@CONDITIONS.register("blur")
class BlurCondition(Condition):
    """A Gaussian blur of each channel with standard deviation ``sigma`` pixels."""

    name = "blur"
    param = "sigma"

    def __init__(self, sigma: float = 2.0) -> None:
        self.sigma = float(sigma)

    def validate(self, channels: int) -> None:
        if not self.sigma > 0:
            raise InputError(f"blur sigma must be positive, got {self.sigma}")

    def usage(self) -> str:
        return f"{self.name}:SIGMA"

    def __call__(self, x, rng, masks=None):
        from scipy.ndimage import gaussian_filter

        return gaussian_filter(x, sigma=(0, self.sigma, self.sigma, 0), mode="reflect").astype(
            np.float32
        )


@CONDITIONS.register("masked")
class MaskedCondition(Condition):
    """A region replaced by uniform noise in ``[-1, 1]``: from ``masks`` or a random box."""

    name = "masked"
    uses_masks = True

    def __call__(self, x, rng, masks=None):
        n, size = x.shape[0], x.shape[1]
        region = random_boxes(n, size, rng) if masks is None else check_masks(masks, n, size)
        noise = rng.uniform(-1.0, 1.0, size=x.shape).astype(np.float32)
        return np.where(region[..., None], noise, x).astype(np.float32)


def condition_options(channels: int) -> list[Condition]:
    """One condition per kind and meaningful parameter for ``channels``-channel images (every
    channel index; blur with its default sigma), in the registry's order."""
    return [c for name in CONDITIONS.names() for c in CONDITIONS.get(name).options(channels)]


def make_condition(spec: str | Condition) -> Condition:
    """Build a condition from a spec such as ``"channel:2"`` (or return a condition unchanged).

    Raises:
        InputError: on an unknown name or a parameter that does not parse.
    """
    if isinstance(spec, Condition):
        return spec
    name, _, value = str(spec).partition(":")
    cls = CONDITIONS.get(name.strip())
    if not value:
        return cls()
    if cls.param is None:
        raise InputError(f"condition {name!r} takes no parameter, got {spec!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"cannot parse the parameter of condition {spec!r}") from None
    if cls.param == "channel":
        if not number.is_integer():
            raise InputError(f"channel index must be an integer, got {spec!r}")
        return cls(int(number))
    return cls(number)
