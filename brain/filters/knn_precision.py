"""``knn_precision``: k-NN manifold membership of the real rare class (Kynkaanniemi et al. 2019).

Each real rare-class sample gets a ball whose radius is its distance to its ``k``-th nearest
real rare-class neighbour. A sample's realism score is ``max_i radius_i / ||x - x_i||``; it lies
inside some ball (the manifold) exactly when the score is ``>= 1``. The level scales the balls:
a sample passes when ``score >= 1 / level`` (level 1 = plain manifold membership; higher lets
more through).
"""

from __future__ import annotations

import numpy as np

from brain.errors import InputError
from brain.filters.base import FILTERS, EmbeddingFilter, LevelLimits, check_rare_count
from brain.filters.maths import knn_radii, realism_scores
from brain.filters.reduce import apply_pca, fit_pca


@FILTERS.register("knn_precision")
class KnnPrecisionFilter(EmbeddingFilter):
    """k-NN manifold filter with the realism score.

    Level (an argument of ``decide``, chosen per run): factor on the ball radii, ``> 0``;
    ``None`` = 1 (manifold membership).

    Args:
        k: which neighbour sets the radius (3 in the paper).
        pca_components: PCA dimensions (fitted on the real samples of both classes);
            ``None`` = the embedding space itself. The filter has no randomness.

    Attributes:
        pca_: the fitted PCA or ``None``.
        reference_: ``(R, d)`` real rare-class points (after PCA).
        radii_: ``(R,)`` their k-NN radii.
        default_level_: 1.0.
    """

    reject_reason = "outside-manifold"
    level_help = (
        "factor on the k-NN ball radii, > 0; 1 = inside the real rare-class manifold; "
        "higher lets more through"
    )

    def __init__(
        self,
        *,
        k: int = 3,
        pca_components: int | None = None,
    ) -> None:
        self.k = k
        self.pca_components = pca_components

    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None = None, features=None
    ) -> None:
        if self.k < 1:
            raise InputError(f"k must be at least 1, got {self.k}")
        n_rare = int(rare.sum())
        check_rare_count(n_rare, 2, why="a nearest neighbour")
        k = min(self.k, n_rare - 1)
        if k < self.k:
            self.notes_.append(f"{n_rare} real rare samples: k lowered from {self.k} to {k}")
        self.pca_ = fit_pca(X, self.pca_components)
        reference = apply_pca(self.pca_, X[rare])
        radii = knn_radii(reference, k)
        if not (radii > 0).any():
            raise InputError(
                "degenerate covariance: the real rare-class points are all duplicates "
                f"(every {k}-NN radius is 0)"
            )
        self.reference_ = reference
        self.radii_ = radii
        self.default_level_ = 1.0

    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        return realism_scores(apply_pca(self.pca_, X), self.reference_, self.radii_)

    def _threshold(self, level: float) -> float:
        return 1.0 / level

    def _level_for_threshold(self, threshold: float) -> float:
        return 1.0 / max(threshold, 1e-12)

    def level_limits(self) -> LevelLimits:
        return LevelLimits(0.0, np.inf, what="radius factor")

    def level_range(self) -> tuple[float, float]:
        return (0.5, 2.0)
