"""``class_posterior``: is a sample more like the real rare class than like the other classes?

Both classes of the real train data are modelled in a PCA of the embedding space (fitted on the
real samples of both classes), and a sample's score is ``P(rare | x)`` with equal class priors:

- ``estimator="gaussian"`` (default): class-conditional Gaussians with one shared, shrunk
  covariance (:mod:`brain.filters.gaussians`); each class is one or more clusters (its fine
  labels when given to ``fit``, else k-means clusters), so the common class may have many modes
  and the rare class needs only a handful of samples;
- ``estimator="knn"``: a distance-weighted vote of the ``k`` nearest real samples, each class's
  votes divided by its size.

A sample passes when the posterior is ``>= level`` (default 0.5: more likely rare than other).
Like ``confidence``, a higher level lets fewer samples through. The filter knows nothing about
realism: an image unlike any real one can still lie on the rare side (see ``realism``).
"""

from __future__ import annotations

import numpy as np

from brain.errors import InputError
from brain.filters.base import FILTERS, EmbeddingFilter, ProbabilityLevel, check_rare_count
from brain.filters.gaussians import cluster_labels, fit_tied_gaussians
from brain.filters.reduce import apply_pca, fit_pca

ESTIMATORS = ("gaussian", "knn")


def knn_posterior(
    query: np.ndarray, reference: np.ndarray, rare: np.ndarray, k: int, *, exclude_self: bool
) -> np.ndarray:
    """Balanced, distance-weighted k-NN estimate of ``P(rare | x)`` for the rows of ``query``.

    Level (an argument of ``decide``, chosen per run): minimum posterior in ``[0, 1]``;
    ``None`` = 0.5.

    Args:
        query: ``(M, d)`` points.
        reference: ``(N, d)`` labelled real points.
        rare: ``(N,)`` rare-class mask of ``reference`` (both classes present).
        k: neighbours that vote.
        exclude_self: ``query`` is ``reference`` itself; each point's own vote is left out.
    """
    from sklearn.neighbors import NearestNeighbors

    n = min(k + int(exclude_self), len(reference))
    dists, index = NearestNeighbors(n_neighbors=n).fit(reference).kneighbors(query)
    if exclude_self:
        dists, index = dists[:, 1:], index[:, 1:]
    weights = 1.0 / np.maximum(dists, 1e-12)
    votes_rare = (weights * rare[index]).sum(axis=1) / rare.sum()
    votes_other = (weights * ~rare[index]).sum(axis=1) / (~rare).sum()
    return votes_rare / np.maximum(votes_rare + votes_other, 1e-300)


@FILTERS.register("class_posterior")
class ClassPosteriorFilter(ProbabilityLevel, EmbeddingFilter):
    """Rare-class posterior from the real data of both classes.

    Args:
        estimator: ``"gaussian"`` or ``"knn"`` (see the module docstring).
        pca_components: PCA dimensions (fitted on the real samples of both classes); ``None``
            = the embedding space itself.
        k: neighbours of the ``knn`` estimator.
        rare_clusters, other_clusters: k-means clusters per class of the ``gaussian`` estimator
            when no fine labels are given (fewer when a class is small).
        random_state: seed of the k-means clustering.

    Attributes:
        pca_: the fitted PCA or ``None``.
        gaussians_: the fitted :class:`~brain.filters.gaussians.TiedGaussians` (``gaussian``).
        reference_, rare_: the real points in the PCA space and their rare mask (``knn``).
        n_clusters_: clusters per class, ``(rare, other)`` (``gaussian``).
        default_level_: 0.5.
    """

    uses_fine_labels = True
    level_what = "posterior threshold"
    reject_reason = "other-class"
    level_help = (
        "minimum rare-class posterior (equal class priors), in [0, 1]; higher lets fewer through"
    )

    def __init__(
        self,
        *,
        estimator: str = "gaussian",
        pca_components: int | None = 32,
        k: int = 10,
        rare_clusters: int = 1,
        other_clusters: int = 8,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.pca_components = pca_components
        self.k = k
        self.rare_clusters = rare_clusters
        self.other_clusters = other_clusters
        self.random_state = random_state

    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None = None, features=None
    ) -> None:
        if self.estimator not in ESTIMATORS:
            raise InputError(
                f"unknown estimator {self.estimator!r}; known: {', '.join(ESTIMATORS)}"
            )
        check_rare_count(int(rare.sum()), 2, why="a rare-class model")
        check_rare_count(int((~rare).sum()), 2, why="a model of the other classes (count shown)")
        if self.k < 1:
            raise InputError(f"k must be at least 1, got {self.k}")
        self.pca_ = fit_pca(X, self.pca_components)
        points = apply_pca(self.pca_, X)
        if self.estimator == "gaussian":
            clusters, cluster_rare = cluster_labels(
                points,
                rare,
                fine=fine,
                rare_clusters=self.rare_clusters,
                other_clusters=self.other_clusters,
                random_state=self.random_state,
            )
            self.gaussians_ = fit_tied_gaussians(points, clusters, cluster_rare)
            self.n_clusters_ = (int(cluster_rare.sum()), int((~cluster_rare).sum()))
        else:
            self.reference_, self.rare_ = points, rare
        self.default_level_ = 0.5

    def posterior(self, X: object) -> np.ndarray:
        """``P(rare | x)`` of validated or raw samples (same as :meth:`score_samples`)."""
        return self.score_samples(X)

    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        points = apply_pca(self.pca_, X)
        if self.estimator == "gaussian":
            return self.gaussians_.rare_posterior(points)
        return knn_posterior(points, self.reference_, self.rare_, self.k, exclude_self=False)
