"""Exact and near duplicates among generated images (arrays only).

Two generated samples are duplicates when their pixels are identical (same hash), or when they
are near each other in the embedding space *and* their SSIM confirms it: embeddings find the
candidate pairs cheaply, the exact SSIM (:mod:`brain.ssim`) decides. Each group of duplicates
keeps its first member; the others point to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

NEAR_RATIO = 0.05
"""Candidate pairs: embedding distance below this share of the median nearest-neighbour distance
among the reference (real) embeddings."""
SSIM_THRESHOLD = 0.98
"""SSIM at or above which a candidate pair is a near duplicate."""


def pixel_hash(image: np.ndarray) -> str:
    """A digest of an image's shape and pixels."""
    array = np.ascontiguousarray(image)
    return hashlib.sha1(repr(array.shape).encode() + array.tobytes()).hexdigest()


def _root(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _join(parent: list[int], a: int, b: int) -> None:
    ra, rb = _root(parent, a), _root(parent, b)
    if ra != rb:
        parent[max(ra, rb)] = min(ra, rb)  # the earlier sample stays the group's keeper


def find_duplicates(
    images: Sequence[np.ndarray],
    embeddings: np.ndarray,
    reference: np.ndarray,
    *,
    fitted: np.ndarray | None = None,
    near_ratio: float = NEAR_RATIO,
    ssim_threshold: float = SSIM_THRESHOLD,
) -> np.ndarray:
    """For every image, the index of the earlier image it duplicates, or -1.

    Args:
        images: decoded ``uint8`` ``(H, W, C)`` images (hashed as they are).
        embeddings: ``(N, D)`` their embeddings.
        reference: ``(M, D)`` real embeddings that set the distance scale (``M >= 2``).
        fitted: the images as one ``uint8`` ``(N, H, W, C)`` array of one size, for the SSIM
            check; without it only exact duplicates are found.
        near_ratio: candidate pairs lie closer than ``near_ratio`` times the median
            nearest-neighbour distance of ``reference``.
        ssim_threshold: SSIM that confirms a candidate pair.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(images)
    parent = list(range(n))
    first: dict[str, int] = {}
    for index, image in enumerate(images):
        _join(parent, first.setdefault(pixel_hash(image), index), index)
    if fitted is not None and n > 1 and len(reference) > 1:
        from brain.ssim import pairwise_ssim

        gaps = NearestNeighbors(n_neighbors=2).fit(reference).kneighbors(reference)[0][:, 1]
        radius = near_ratio * float(np.median(gaps))
        graph = NearestNeighbors(radius=radius).fit(embeddings)
        for i, neighbours in enumerate(graph.radius_neighbors(embeddings, return_distance=False)):
            for j in neighbours[neighbours > i]:
                if _root(parent, i) == _root(parent, int(j)):
                    continue
                ssim = pairwise_ssim(fitted[i : i + 1], fitted[j : j + 1])[0, 0]
                if ssim >= ssim_threshold:
                    _join(parent, i, int(j))
    roots = np.array([_root(parent, i) for i in range(n)], dtype=np.int64)
    return np.where(roots == np.arange(n), -1, roots)
