"""Class-conditional Gaussians with one shared (tied), shrunk covariance: the model behind the
``class_posterior`` and ``realism`` filters.

The real samples are grouped into clusters (the fine classes when known, else k-means clusters
inside each of the two classes); every cluster gets its own mean, and all share one covariance
estimated from the within-cluster residuals of *all* real samples with Ledoit-Wolf shrinkage.
Pooling is what makes the model usable with a handful of rare samples: the rare class only has to
provide a mean. From the squared Mahalanobis distances ``d2[n, k]`` of a point to every cluster:

- the rare-class posterior with equal class priors (``rare_posterior``): is the point more like
  the rare class than like the others?
- the distance to the nearest cluster of any class (``nearest_distance_sq``): is the point like
  any real sample at all? (the feature-space Mahalanobis test of Lee et al. 2018).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from brain.errors import InputError


@dataclass(frozen=True)
class TiedGaussians:
    """Fitted clusters: ``means`` ``(K, d)``, shared ``precision`` ``(d, d)``, the clusters of
    the rare class (``rare`` ``(K,)`` bool), each cluster's share of its class (``log_weights``
    ``(K,)``, log of a within-class proportion) and its number of samples (``sizes``)."""

    means: np.ndarray
    precision: np.ndarray
    rare: np.ndarray
    log_weights: np.ndarray
    sizes: np.ndarray

    def distances_sq(self, Z: np.ndarray) -> np.ndarray:
        """``(N, K)`` squared Mahalanobis distances of the rows of ``Z`` to every cluster."""
        Z = np.asarray(Z, dtype=np.float64)
        # ||z - m||_P^2 = z'Pz - 2 z'Pm + m'Pm, in blocks of rows
        Pm = self.means @ self.precision
        mPm = np.einsum("kd,kd->k", Pm, self.means)
        zPz = np.einsum("nd,de,ne->n", Z, self.precision, Z)
        return np.maximum(zPz[:, None] - 2.0 * Z @ Pm.T + mPm[None, :], 0.0)

    def rare_posterior(self, Z: np.ndarray) -> np.ndarray:
        """``P(rare | z)`` with equal priors for the two classes, in ``[0, 1]``."""
        log_density = -0.5 * self.distances_sq(Z) + self.log_weights[None, :]
        rare = logsumexp(log_density[:, self.rare], axis=1)
        other = logsumexp(log_density[:, ~self.rare], axis=1)
        return 1.0 / (1.0 + np.exp(np.clip(other - rare, -700.0, 700.0)))

    def nearest_distance_sq(self, Z: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row of ``Z`` to its nearest cluster."""
        return self.distances_sq(Z).min(axis=1)

    def nearest_distance_sq_loo(self, Z: np.ndarray, clusters: np.ndarray) -> np.ndarray:
        """:meth:`nearest_distance_sq` of the fit samples ``Z`` (cluster ``clusters``) with each
        one left out of its own cluster's mean, as a new sample would be measured.

        Leaving ``x`` out of a mean of ``n`` samples moves it so that ``x - mean`` grows by
        ``n / (n - 1)``; a cluster of one sample is then infinitely far.
        """
        d2 = self.distances_sq(Z)
        n = self.sizes[clusters].astype(np.float64)
        scale = np.where(n > 1, (n / np.maximum(n - 1, 1)) ** 2, np.inf)
        rows = np.arange(len(Z))
        d2[rows, clusters] = np.where(n > 1, d2[rows, clusters] * scale, np.inf)
        return d2.min(axis=1)


def _kmeans_labels(points: np.ndarray, n_clusters: int, random_state: int | None) -> np.ndarray:
    from sklearn.cluster import KMeans

    n_clusters = min(n_clusters, len(np.unique(points, axis=0)))
    if n_clusters <= 1:
        return np.zeros(len(points), dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = KMeans(n_clusters=n_clusters, n_init=4, random_state=random_state)
        return model.fit_predict(points).astype(np.int64)


def cluster_labels(
    Z: np.ndarray,
    rare: np.ndarray,
    *,
    fine: np.ndarray | None = None,
    rare_clusters: int = 1,
    other_clusters: int = 8,
    min_cluster_size: int = 5,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster index of every real sample and, per cluster, whether it is a rare-class cluster.

    With ``fine`` labels (one per sample) each (class, fine label) pair is a cluster. Without
    them each class is split by k-means into ``rare_clusters`` / ``other_clusters`` clusters,
    fewer when a class has fewer than ``min_cluster_size`` samples per cluster.
    """
    labels = np.empty(len(Z), dtype=np.int64)
    is_rare: list[bool] = []
    for flag, wanted in ((True, rare_clusters), (False, other_clusters)):
        where = np.flatnonzero(rare == flag)
        if fine is not None:
            _, local = np.unique(np.asarray(fine)[where], return_inverse=True)
        else:
            count = max(1, min(wanted, len(where) // max(min_cluster_size, 1)))
            local = _kmeans_labels(Z[where], count, random_state)
        labels[where] = local + len(is_rare)
        is_rare.extend([flag] * (int(local.max()) + 1))
    return labels, np.array(is_rare, dtype=bool)


def fit_tied_gaussians(Z: np.ndarray, clusters: np.ndarray, rare: np.ndarray) -> TiedGaussians:
    """Fit cluster means and one shared Ledoit-Wolf covariance.

    Args:
        Z: ``(N, d)`` real samples.
        clusters: ``(N,)`` cluster index of each sample (``0..K-1``, every index used).
        rare: ``(K,)`` whether each cluster belongs to the rare class (both kinds present).

    Raises:
        InputError: when the residuals do not spread (identical samples).
    """
    from sklearn.covariance import LedoitWolf

    n_clusters = int(clusters.max()) + 1
    means = np.stack([Z[clusters == k].mean(axis=0) for k in range(n_clusters)])
    residuals = Z - means[clusters]
    if float(np.abs(residuals).max(initial=0.0)) == 0.0:
        raise InputError("degenerate covariance: the real samples do not spread at all")
    covariance = LedoitWolf(assume_centered=True).fit(residuals).covariance_
    sizes = np.bincount(clusters, minlength=n_clusters).astype(np.float64)
    class_totals = np.where(rare, sizes[rare].sum(), sizes[~rare].sum())
    return TiedGaussians(
        means=means,
        precision=np.linalg.inv(covariance),
        rare=np.asarray(rare, dtype=bool),
        log_weights=np.log(sizes / class_totals),
        sizes=sizes.astype(np.int64),
    )
