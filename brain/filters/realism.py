"""``realism``: is a sample like any real sample at all, whatever its class?

A realism gate rejects images that no real image resembles (heavy noise, blur, inverted
contrast, shuffled patches) even when a classifier happens to map them near the rare class. It
measures how typical a sample is of the real train data of *all* classes, in a PCA of the
embedding space:

- ``method="mahalanobis"`` (default): squared Mahalanobis distance to the nearest cluster of a
  class-conditional Gaussian model with one shared, shrunk covariance
  (:mod:`brain.filters.gaussians`; Lee et al. 2018);
- ``method="knn"``: the k-NN realism score of Kynkaanniemi et al. (2019) against all real
  samples, using only the half of the k-NN balls with the smallest radii, as the paper advises.

The raw measure is turned into a rank against the real train samples themselves: a sample's
score is the share of real train samples that are *less* typical than it (about uniform on
real data, near 0 far from it). At level ``L`` a sample passes when ``score >= 1 - L``, i.e.
the level is the share of the real train samples that would pass (default 0.99).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances

from brain.errors import InputError
from brain.filters.base import FILTERS, EmbeddingFilter
from brain.filters.gaussians import cluster_labels, fit_tied_gaussians
from brain.filters.maths import knn_radii, realism_scores
from brain.filters.reduce import apply_pca, fit_pca

METHODS = ("mahalanobis", "knn")
RANK_AGAINST = ("all", "rare")
#: Fewest real rare train samples a ``rank_against="rare"`` realism ranks against.
MIN_RANK_REFERENCE = 5


def share_below(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each value, the share of ``reference`` values that are ``<=`` it (in ``[0, 1]``)."""
    ordered = np.sort(np.asarray(reference, dtype=np.float64))
    return np.searchsorted(ordered, values, side="right") / len(ordered)


def loo_knn_realism(points: np.ndarray, radii: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """k-NN realism of every real point against the kept balls of the *other* real points."""
    scores = np.empty(len(points), dtype=np.float64)
    kept = np.flatnonzero(keep)
    for start in range(0, len(points), 1024):
        block = points[start : start + 1024]
        dists = euclidean_distances(block, points[kept])
        ratio = radii[kept][None, :] / np.maximum(dists, 1e-12)
        rows = np.arange(start, start + len(block))
        ratio[rows[:, None] == kept[None, :]] = 0.0  # leave each point's own ball out
        scores[start : start + len(block)] = ratio.max(axis=1)
    return scores


@FILTERS.register("realism")
class RealismFilter(EmbeddingFilter):
    """Realism gate: distance to the support of the real data of all classes.

    Level (an argument of ``decide``, chosen per run): share of real train samples that pass, in
    ``(0, 1)``; ``None`` = 0.99.

    Args:
        method: ``"mahalanobis"`` or ``"knn"`` (see the module docstring).
        pca_components: PCA dimensions (fitted on all real samples); ``None`` = no PCA.
        k: neighbour that sets a ball's radius (``knn``).
        other_clusters: k-means clusters of the common class without fine labels
            (``mahalanobis``; the rare class is one cluster unless fine labels split it).
        rank_against: the real train samples a score is ranked against: ``"all"`` (the level
            is the share of real samples of any class that pass) or ``"rare"`` (the share of
            real rare samples that pass; a rare class less typical of the data than the rest,
            e.g. the largest chromosome shrunk to the common size, is then not cut away).
        random_state: seed of the k-means clustering.

    Attributes:
        pca_: the fitted PCA or ``None``.
        reference_raw_: the raw measure of the real train samples scores are ranked against
            (``d2`` for ``mahalanobis``, higher = less typical; realism for ``knn``, higher =
            more typical).
        default_level_: 0.99.
    """

    uses_fine_labels = True
    reject_reason = "unrealistic"
    level_help = (
        "share of the real train samples that would pass, in (0, 1); higher lets more through"
    )

    def __init__(
        self,
        *,
        method: str = "mahalanobis",
        pca_components: int | None = 32,
        k: int = 5,
        other_clusters: int = 8,
        rank_against: str = "all",
        random_state: int | None = 0,
    ) -> None:
        self.method = method
        self.pca_components = pca_components
        self.k = k
        self.other_clusters = other_clusters
        self.rank_against = rank_against
        self.random_state = random_state

    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None = None, features=None
    ) -> None:
        if self.method not in METHODS:
            known = ", ".join(METHODS)
            raise InputError(f"unknown realism method {self.method!r}; known: {known}")
        if self.rank_against not in RANK_AGAINST:
            known = ", ".join(RANK_AGAINST)
            raise InputError(f"unknown rank_against {self.rank_against!r}; known: {known}")
        if len(X) <= self.k or self.k < 1:
            raise InputError(f"realism needs more than k = {self.k} real samples, got {len(X)}")
        self.pca_ = fit_pca(X, self.pca_components)
        points = apply_pca(self.pca_, X)
        if self.method == "mahalanobis":
            clusters, cluster_rare = cluster_labels(
                points,
                rare if rare.any() and not rare.all() else np.zeros(len(X), bool),
                fine=fine,
                other_clusters=self.other_clusters,
                random_state=self.random_state,
            )
            self.gaussians_ = fit_tied_gaussians(points, clusters, cluster_rare)
            self.fit_clusters_ = clusters
        else:
            radii = knn_radii(points, self.k)
            keep = radii <= np.median(radii)
            self.reference_, self.radii_ = points[keep], radii[keep]
            if not (self.radii_ > 0).any():
                raise InputError("degenerate data: the real samples are all duplicates")
            self.loo_points_ = (points, radii, keep)
        # each real sample measured as a new one would be (left out of its own part of the
        # model), so that the level is the share of *new* real samples that pass
        self.reference_raw_ = self._raw(points, loo=True)
        if self.rank_against == "rare" and rare.sum() >= MIN_RANK_REFERENCE:
            self.reference_raw_ = self.reference_raw_[rare]
        elif self.rank_against == "rare":
            self.notes_.append(
                f"realism ranked against all real train samples: only {int(rare.sum())} rare "
                f"ones (fewer than {MIN_RANK_REFERENCE})"
            )
        self.default_level_ = 0.99

    def _raw(self, points: np.ndarray, *, loo: bool = False) -> np.ndarray:
        if self.method == "mahalanobis":
            if loo:
                return self.gaussians_.nearest_distance_sq_loo(points, self.fit_clusters_)
            return self.gaussians_.nearest_distance_sq(points)
        if loo:
            all_points, radii, keep = self.loo_points_
            return loo_knn_realism(all_points, radii, keep)
        return realism_scores(points, self.reference_, self.radii_)

    def raw(self, X: object) -> np.ndarray:
        """The raw measure of samples (see ``reference_raw_``)."""
        self.check_is_fitted()
        return self._raw(apply_pca(self.pca_, self._validate_new(X)))

    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        raw = self._raw(apply_pca(self.pca_, X))
        if self.method == "mahalanobis":  # share of real samples at least as far out
            return 1.0 - share_below(self.reference_raw_, np.nextafter(raw, -np.inf))
        return share_below(self.reference_raw_, raw)

    def _threshold(self, level: float) -> float:
        return 1.0 - level

    def _level_for_threshold(self, threshold: float) -> float:
        return 1.0 - threshold
