"""``umap_gmm``: the reference filter of Tallon et al. (2024).

UMAP (2-D, seeded) is fitted on the real embeddings of both classes; new samples are projected
into it with ``transform``. A Gaussian mixture (2 full-covariance components by default) is
fitted on the real rare-class points in that plane; a sample passes when it lies inside the
confidence ellipse of the heaviest component (see :mod:`brain.filters.ellipse`).

Two UMAP backends:

- ``"fast"`` (default): PCA to ``pca_components`` dimensions, exact neighbours and disk-cached
  kernels (:mod:`brain.filters.fastumap`), ``n_epochs`` SGD epochs. At the study's scale (18,000
  real, 31,507 synthetic, 512-d) this is several times faster than plain umap-learn with the same
  pass/reject decisions on most samples (``bench/bench_umap_filter.py``).
- ``"umap-learn"``: ``umap.UMAP`` itself (approximate neighbours, its own epoch defaults), for
  reference runs; ``pca_components=None`` and ``n_epochs=None`` give plain umap-learn.

UMAP layouts depend on the seed, and the ellipse at the default level cuts through the dense
part of the rare-class blob: two plain umap-learn runs with different seeds take the same
decision on only about 88% of the study-scale simulation's synthetic samples; the fast defaults
agree with plain umap-learn on about 86-87%, ``n_epochs=200`` on about 89% (see
``bench/RESULTS.md``).

umap-learn's ``transform`` (SGD after placing a new point at the weighted mean of its
neighbours) pushes new points towards the rim of their cluster, so even held-out real rare
samples often fall outside the ellipse. ``transform_epochs=0`` keeps new points where they were
placed; it is not the default because it departs from the study's procedure.
"""

from __future__ import annotations

import warnings

import numpy as np

from brain.errors import InputError
from brain.filters.base import FILTERS
from brain.filters.ellipse import EllipseFilter
from brain.filters.reduce import apply_pca, fit_pca

BACKENDS = ("fast", "umap-learn")


@FILTERS.register("umap_gmm")
class UmapGmmFilter(EllipseFilter):
    """UMAP + Gaussian-mixture ellipse filter.

    Level (an argument of ``decide``, chosen per run): confidence level of the ellipse in
    ``(0, 1)``; ``None`` = weight of the heaviest mixture component (learned).

    Args:
        gmm_components: mixture components fitted on the real rare class.
        gmm_covariance: ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``.
        gmm_reg_covar: added to the covariance diagonals (sklearn ``reg_covar``).
        gmm_n_init: mixture restarts (the best likelihood is kept).
        backend: ``"fast"`` or ``"umap-learn"`` (see the module docstring).
        pca_components: PCA dimensions before UMAP; ``None`` = no PCA.
        n_neighbors, min_dist: UMAP neighbourhood size and minimum distance.
        n_epochs: UMAP SGD epochs for the fit; ``None`` = umap-learn's default (200 above
            10,000 points, 500 below).
        transform_epochs: SGD epochs when projecting new samples (fast backend only);
            ``None`` = ``n_epochs // 3`` (umap-learn's rule).
        low_memory: umap-learn's ``low_memory`` (umap-learn backend only).
        random_state: seed of UMAP and the mixture (the PCA is exact).

    Attributes:
        pca_: the fitted PCA or ``None``.
        umap_: the fitted UMAP model (``FastUMAP`` or ``umap.UMAP``).
        embedding_: ``(N, 2)`` UMAP coordinates of the real fit samples (= ``fit_points_``),
            the plane the plots draw (:func:`brain.filters.plots.plane_points`).
        See :class:`~brain.filters.ellipse.EllipseFilter` for the mixture attributes.
    """

    def __init__(
        self,
        *,
        gmm_components: int = 2,
        gmm_covariance: str = "full",
        gmm_reg_covar: float = 1e-6,
        gmm_n_init: int = 1,
        backend: str = "fast",
        pca_components: int | None = 50,
        n_neighbors: int = 15,
        min_dist: float = 0.1,
        n_epochs: int | None = 100,
        transform_epochs: int | None = None,
        low_memory: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.gmm_components = gmm_components
        self.gmm_covariance = gmm_covariance
        self.gmm_reg_covar = gmm_reg_covar
        self.gmm_n_init = gmm_n_init
        self.backend = backend
        self.pca_components = pca_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self.transform_epochs = transform_epochs
        self.low_memory = low_memory
        self.random_state = random_state

    def _fit_space(self, X: np.ndarray, rare: np.ndarray) -> np.ndarray:
        if self.backend not in BACKENDS:
            known = ", ".join(BACKENDS)
            raise InputError(f"unknown UMAP backend {self.backend!r}; known: {known}")
        if len(X) <= self.n_neighbors:
            raise InputError(
                f"{len(X)} real samples to fit UMAP on, need more than n_neighbors="
                f"{self.n_neighbors}"
            )
        self.pca_ = fit_pca(X, self.pca_components)
        reduced = apply_pca(self.pca_, X)
        self.umap_ = self._make_umap()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.umap_.fit(reduced)
        self.embedding_ = np.asarray(self.umap_.embedding_, dtype=np.float64)
        return self.embedding_

    def _transform_validated(self, X: np.ndarray) -> np.ndarray:
        """UMAP coordinates ``(N, 2)``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            points = self.umap_.transform(apply_pca(self.pca_, X))
        return np.asarray(points, dtype=np.float64)

    def _make_umap(self):
        if self.backend == "fast":
            from brain.filters.fastumap import FastUMAP

            return FastUMAP(
                n_neighbors=self.n_neighbors,
                min_dist=self.min_dist,
                n_epochs=self.n_epochs,
                transform_epochs=self.transform_epochs,
                random_state=self.random_state,
            )
        if self.transform_epochs is not None:
            raise InputError("transform_epochs applies to the fast UMAP backend only")
        import umap

        return umap.UMAP(
            n_components=2,
            n_neighbors=self.n_neighbors,
            min_dist=self.min_dist,
            n_epochs=self.n_epochs,
            low_memory=self.low_memory,
            random_state=self.random_state,
        )
