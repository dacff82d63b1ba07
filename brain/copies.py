"""Near-copies of real images, judged on the pixels (arrays only).

A synthetic image that sits closer to a real training image than distinct real images of the
rare class sit to each other is a copy, not a new sample, whatever a filter's embedding says:
an interpolation at weight 0.9 keeps 90% of its source, and an image-to-image sample that never
left its source of another class is that image with the rare label (label noise).

How close is measured on the images themselves, under one size:

- SSIM (:mod:`brain.ssim`, scikit-image's definition);
- the normalised pixel distance: the root-mean-square difference divided by 255 (0 = the same
  pixels, 1 = black against white everywhere).

The candidates of each image are found cheaply first (the ``SHORTLIST`` nearest reference images
in the embedding space and as many in a space of 8 x 8 thumbnails, so that a copy the
classifier's embedding misplaces is still found), then compared exactly.

The default thresholds come from the real data (:func:`copy_thresholds`): how close distinct
real rare-class images come to their nearest neighbour sets the scale (``s``: the 95th
percentile of their nearest-neighbour SSIMs; ``d``: the 5th percentile of their
nearest-neighbour pixel distances; percentiles, so that a few near-duplicates in the real data
do not set it), and an image is a copy when it lies more than halfway from there towards an
exact copy: SSIM at least ``(1 + s) / 2`` (at most ``SSIM_CAP``), or pixel distance at most
``d / 2``. A real rare image held out is rarely that close to a real one, so it passes; an
interpolation at weight 0.9 lies a tenth of the way from its source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from brain.errors import InputError
from brain.ssim import WINDOW, paired_ssim

SSIM_CAP = 0.98
"""The highest default SSIM threshold (a real set holding near-duplicates does not let 0.99
copies pass)."""
FALLBACK_SSIM = 0.9
"""The SSIM threshold with too few real rare images to measure one (the study's near-copy
level)."""
FALLBACK_DISTANCE = 0.02
"""The pixel-distance threshold with too few real rare images (2% of the range, RMS)."""
SHORTLIST = 16
"""Candidates per image in each of the two search spaces."""
THUMBNAIL = 8
"""Side of the thumbnails the pixel search space is made of."""
NEIGHBOUR_QUANTILE = 0.95
"""The percentile of the real rare images' nearest-neighbour SSIMs (and ``1 -`` it of their
distances) that sets the scale of the default thresholds."""
MAX_REFERENCE = 500
"""Real rare images the default thresholds are measured on (a seeded subset above)."""

NEAR_COPY = "near-copy"
COPY_OF_SOURCE = "copy-of-source"
COPY_OF_OTHER_CLASS = "copy-of-other-class"
COPY_REASONS = (NEAR_COPY, COPY_OF_SOURCE, COPY_OF_OTHER_CLASS)
"""Why the gate rejects: a copy of a real rare train image; of the sample's own source, which is
not a real rare train image (label noise); of a real train image of another class."""


@dataclass(frozen=True)
class CopyThresholds:
    """When an image is a copy of another.

    Attributes:
        ssim: SSIM at or above which it is; distance: pixel distance at or below which it is.
        chosen: ``"data"`` (measured on the real rare images), ``"given"`` (the SSIM was
            given; the distance still from the data) or ``"fallback"`` (too few real rare
            images: ``FALLBACK_SSIM`` and ``FALLBACK_DISTANCE``).
        n_reference: real rare images measured; real_ssim, real_distance: the 95th percentile
            of their nearest-neighbour SSIMs and the 5th of their nearest-neighbour distances
            (``None``: not measured).
    """

    ssim: float
    distance: float
    chosen: str
    n_reference: int = 0
    real_ssim: float | None = None
    real_distance: float | None = None

    def is_copy(self, ssim: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Whether each (SSIM, distance) pair makes a copy."""
        return (np.asarray(ssim) >= self.ssim) | (np.asarray(distance) <= self.distance)

    def as_dict(self) -> dict[str, Any]:
        """The thresholds as stored in a run record."""
        return asdict(self)


@dataclass
class Match:
    """Each query image's closest reference: ``ssim`` (the highest SSIM), ``distance`` (the
    smallest pixel distance) and ``index`` (the reference reaching the highest SSIM; -1: no
    reference)."""

    ssim: np.ndarray
    distance: np.ndarray
    index: np.ndarray


def check_copy_threshold(threshold: float | None) -> None:
    """Raise an :class:`InputError` unless ``threshold`` is ``None`` or lies in (0, 1]."""
    if threshold is None:
        return
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(threshold, bool) or not (np.isfinite(value) and 0.0 < value <= 1.0):
        raise InputError(f"the near-copy SSIM threshold must lie in (0, 1], got {threshold}")


def check_images(images: np.ndarray, what: str) -> np.ndarray:
    """``images`` as ``uint8`` ``(N, H, W, C)``, at least the SSIM window in size."""
    array = np.asarray(images)
    if array.ndim != 4 or array.dtype != np.uint8:
        raise InputError(f"{what}: expected uint8 (N, H, W, C) images, got {array.shape}")
    if min(array.shape[1:3]) < WINDOW:
        raise InputError(
            f"{what} are {array.shape[1]} x {array.shape[2]} px: the near-copy test needs at "
            f"least {WINDOW} x {WINDOW}"
        )
    return array


def pixel_distance(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Root-mean-square difference of ``first[i]`` and ``second[i]``, divided by 255."""
    diff = first.astype(np.float32) - second.astype(np.float32)
    return np.sqrt((diff**2).reshape(len(diff), -1).mean(axis=1)) / 255.0


def thumbnails(images: np.ndarray) -> np.ndarray:
    """``(N, THUMBNAIL**2 * C)`` area-averaged thumbnails in ``[0, 1]`` (the pixel search
    space)."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    small = torch.nn.functional.adaptive_avg_pool2d(tensor, THUMBNAIL)
    return small.reshape(len(images), -1).numpy()


def _neighbours(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(query)[1]


def shortlist(
    query_images: np.ndarray,
    reference_images: np.ndarray,
    query_embeddings: np.ndarray | None,
    reference_embeddings: np.ndarray | None,
    *,
    k: int = SHORTLIST,
    exclude_self: bool = False,
) -> list[np.ndarray]:
    """For each query, the reference indices worth comparing exactly: its ``k`` nearest in the
    embedding space (when given) and its ``k`` nearest by thumbnail.

    Args:
        exclude_self: queries *are* the references (same order): leave each one out.
    """
    n_ref = len(reference_images)
    k = min(k + int(exclude_self), n_ref)
    found = [_neighbours(thumbnails(reference_images), thumbnails(query_images), k)]
    if query_embeddings is not None and reference_embeddings is not None:
        found.append(_neighbours(reference_embeddings, query_embeddings, k))
    stacked = np.concatenate(found, axis=1)
    lists = []
    for row, indices in enumerate(stacked):
        unique = np.unique(indices)
        lists.append(unique[unique != row] if exclude_self else unique)
    return lists


def _pair_blocks(
    query_images: np.ndarray,
    reference_images: np.ndarray,
    candidates: list[np.ndarray],
    block: int = 256,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(rows, columns, ssim, distance)`` of every (query, candidate) pair, ``block`` queries
    at a time (memory stays bounded)."""
    for start in range(0, len(query_images), block):
        lists = candidates[start : start + block]
        rows = np.repeat(np.arange(start, start + len(lists)), [len(c) for c in lists])
        if not len(rows):
            continue
        columns = np.concatenate(lists)
        first, second = query_images[rows], reference_images[columns]
        yield rows, columns, paired_ssim(first, second), pixel_distance(first, second)


def compare_pairs(
    query_images: np.ndarray, reference_images: np.ndarray, candidates: list[np.ndarray]
) -> Match:
    """Each query against its ``candidates`` (reference indices): the best SSIM, where it is
    reached, and the smallest pixel distance."""
    n = len(query_images)
    ssim_best = np.full(n, -np.inf)
    distance_best = np.full(n, np.inf)
    index = np.full(n, -1, dtype=np.int64)
    for rows, columns, ssim, distance in _pair_blocks(query_images, reference_images, candidates):
        order = np.lexsort((-ssim, rows))  # per query, the highest SSIM first
        head = np.r_[True, rows[order][1:] != rows[order][:-1]]
        ssim_best[rows[order][head]] = ssim[order][head]
        index[rows[order][head]] = columns[order][head]
        np.minimum.at(distance_best, rows, distance)
    return Match(ssim_best, distance_best, index)


def nearest_real(
    query_images: np.ndarray,
    reference_images: np.ndarray,
    query_embeddings: np.ndarray | None = None,
    reference_embeddings: np.ndarray | None = None,
    *,
    k: int = SHORTLIST,
) -> Match:
    """Each query image's closest reference image (shortlist, then exact comparison)."""
    if len(reference_images) == 0:
        n = len(query_images)
        return Match(np.full(n, -np.inf), np.full(n, np.inf), np.full(n, -1, dtype=np.int64))
    candidates = shortlist(
        query_images, reference_images, query_embeddings, reference_embeddings, k=k
    )
    return compare_pairs(query_images, reference_images, candidates)


def _fallback(ssim: float | None, n_reference: int) -> CopyThresholds:
    """The thresholds when the real rare images are too few (or all identical) to measure."""
    chosen = FALLBACK_SSIM if ssim is None else float(ssim)
    return CopyThresholds(chosen, FALLBACK_DISTANCE, "fallback", n_reference)


def copy_thresholds(
    rare_images: np.ndarray,
    rare_embeddings: np.ndarray | None = None,
    *,
    ssim: float | None = None,
    random_state: int = 0,
) -> CopyThresholds:
    """The near-copy thresholds measured on distinct real rare-class images (see the module
    docstring); ``ssim`` given replaces the measured SSIM threshold.

    Pairs with identical pixels (duplicates in the real data) are left out of the measurement.
    """
    check_copy_threshold(ssim)
    images = check_images(rare_images, "real rare images")
    if len(images) > MAX_REFERENCE:
        keep = np.sort(np.random.default_rng(random_state).permutation(len(images)))
        keep = keep[:MAX_REFERENCE]
        images = images[keep]
        rare_embeddings = None if rare_embeddings is None else rare_embeddings[keep]
    if len(images) < 3:
        return _fallback(ssim, len(images))
    candidates = shortlist(images, images, rare_embeddings, rare_embeddings, exclude_self=True)
    nearest_ssim = np.full(len(images), -np.inf)
    nearest_distance = np.full(len(images), np.inf)
    for rows, _, pair_ssim, distance in _pair_blocks(images, images, candidates):
        distinct = distance > 0  # identical pixels: a duplicate in the real data, left out
        np.maximum.at(nearest_ssim, rows[distinct], pair_ssim[distinct])
        np.minimum.at(nearest_distance, rows[distinct], distance[distinct])
    measured_rows = np.isfinite(nearest_ssim)
    if not measured_rows.any():
        return _fallback(ssim, len(images))
    real_ssim = float(np.quantile(nearest_ssim[measured_rows], NEIGHBOUR_QUANTILE))
    real_distance = float(np.quantile(nearest_distance[measured_rows], 1.0 - NEIGHBOUR_QUANTILE))
    measured = min((1.0 + real_ssim) / 2.0, SSIM_CAP)
    return CopyThresholds(
        ssim=measured if ssim is None else float(ssim),
        distance=real_distance / 2.0,
        chosen="data" if ssim is None else "given",
        n_reference=len(images),
        real_ssim=real_ssim,
        real_distance=real_distance,
    )


def copy_reasons(
    rare: Match,
    other: Match,
    source: Match,
    source_is_rare: np.ndarray,
    thresholds: CopyThresholds,
) -> np.ndarray:
    """The gate's reason per image (``""``: not a copy): its own source first (a rare train
    source makes a ``near-copy``, any other a ``copy-of-source``), then a real rare train image
    (``near-copy``), then a real image of another class (``copy-of-other-class``)."""
    reasons = np.full(len(rare.ssim), "", dtype=object)
    other_copy = thresholds.is_copy(other.ssim, other.distance)
    rare_copy = thresholds.is_copy(rare.ssim, rare.distance)
    source_copy = thresholds.is_copy(source.ssim, source.distance)
    reasons[other_copy] = COPY_OF_OTHER_CLASS
    reasons[rare_copy] = NEAR_COPY
    reasons[source_copy] = np.where(source_is_rare[source_copy], NEAR_COPY, COPY_OF_SOURCE)
    return reasons
