"""``gmm_full``: the mixture-ellipse test in the embedding space itself (or a PCA of it), no UMAP.

The PCA is fitted on the real embeddings of both classes; the mixture on the real rare-class
points; the chi-square test has as many degrees of freedom as the space has dimensions.
"""

from __future__ import annotations

import numpy as np

from brain.filters.base import FILTERS
from brain.filters.ellipse import EllipseFilter
from brain.filters.reduce import apply_pca, fit_pca


@FILTERS.register("gmm_full")
class GmmFullFilter(EllipseFilter):
    """Gaussian-mixture ellipse filter without UMAP.

    Level (an argument of ``decide``, chosen per run): confidence level of the ellipsoid in
    ``(0, 1)``; ``None`` = weight of the heaviest mixture component (learned).

    Args:
        gmm_components, gmm_covariance, gmm_reg_covar, gmm_n_init: the mixture, as in
            :class:`~brain.filters.umap_gmm.UmapGmmFilter`.
        pca_components: PCA dimensions; ``None`` = the full embedding space (a full covariance
            then needs clearly more real rare samples than dimensions).
        random_state: seed of the mixture (the PCA is exact).

    Attributes:
        pca_: the fitted PCA or ``None``.
        See :class:`~brain.filters.ellipse.EllipseFilter` for the mixture attributes.
    """

    def __init__(
        self,
        *,
        gmm_components: int = 2,
        gmm_covariance: str = "full",
        gmm_reg_covar: float = 1e-6,
        gmm_n_init: int = 1,
        pca_components: int | None = 16,
        random_state: int | None = 0,
    ) -> None:
        self.gmm_components = gmm_components
        self.gmm_covariance = gmm_covariance
        self.gmm_reg_covar = gmm_reg_covar
        self.gmm_n_init = gmm_n_init
        self.pca_components = pca_components
        self.random_state = random_state

    def _fit_space(self, X: np.ndarray, rare: np.ndarray) -> np.ndarray:
        self.pca_ = fit_pca(X, self.pca_components)
        return apply_pca(self.pca_, X)

    def _transform_validated(self, X: np.ndarray) -> np.ndarray:
        """Coordinates in the (PCA) space of the test."""
        return apply_pca(self.pca_, X)
