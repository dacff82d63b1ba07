"""Small pure functions on arrays used by the filters: ellipses, chi-square levels, k-NN radii."""

from __future__ import annotations

import numpy as np
from scipy.stats import chi2
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors

_CHUNK = 4096


def mahalanobis_sq(X: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance ``(x - mu)^T P (x - mu)`` of each row of ``X``.

    Args:
        X: ``(N, D)`` points.
        mean: ``(D,)`` centre.
        precision: ``(D, D)`` inverse covariance.
    """
    centred = np.asarray(X, dtype=np.float64) - mean
    return np.maximum(np.einsum("nd,de,ne->n", centred, precision, centred), 0.0)


def chi2_radius_sq(level: float, dof: int) -> float:
    """Squared Mahalanobis radius of the ``level`` confidence ellipsoid: chi-square quantile."""
    return float(chi2.ppf(level, dof))


def chi2_tail(d2: np.ndarray, dof: int) -> np.ndarray:
    """``1 - CDF`` of chi-square with ``dof`` degrees of freedom at ``d2``, in ``[0, 1]``.

    As a score: a point passes the ``level`` ellipse test (``d2 <= chi2_radius_sq(level)``)
    exactly when ``chi2_tail(d2) >= 1 - level``.
    """
    return chi2.sf(np.asarray(d2, dtype=np.float64), dof)


def ellipse_geometry(
    mean: np.ndarray, covariance: np.ndarray, level: float
) -> tuple[float, float, float]:
    """Full axis lengths and orientation of a 2-D ``level`` confidence ellipse.

    Args:
        mean: ``(2,)`` centre (unused by the shape, kept for a uniform call site).
        covariance: ``(2, 2)`` covariance.
        level: confidence level in ``(0, 1)``.

    Returns:
        ``(width, height, angle_degrees)`` as matplotlib's ``Ellipse`` takes them: ``width``
        along the major axis, which points at ``angle_degrees`` from the x axis.
    """
    del mean
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    radius = np.sqrt(chi2_radius_sq(level, 2))
    minor, major = 2.0 * radius * np.sqrt(np.maximum(eigenvalues, 0.0))
    major_axis = eigenvectors[:, 1]
    angle = float(np.degrees(np.arctan2(major_axis[1], major_axis[0])))
    return float(major), float(minor), angle


def ellipse_outline(
    mean: np.ndarray, covariance: np.ndarray, level: float, n_points: int = 100
) -> np.ndarray:
    """``(n_points, 2)`` points on the boundary of the 2-D ``level`` confidence ellipse."""
    eigenvalues, eigenvectors = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    radius = np.sqrt(chi2_radius_sq(level, 2))
    theta = np.linspace(0.0, 2.0 * np.pi, n_points)
    circle = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return mean + radius * (circle * np.sqrt(np.maximum(eigenvalues, 0.0))) @ eigenvectors.T


def full_covariances(covariances: np.ndarray, covariance_type: str, n_components: int, dim: int):
    """A Gaussian mixture's covariances as ``(K, D, D)`` whatever its ``covariance_type``."""
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.repeat(covariances[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    if covariance_type == "spherical":
        return np.stack([np.eye(dim) * c for c in covariances])
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def heaviest_component(weights: np.ndarray) -> int:
    """Index of the mixture component with the largest weight (first one on ties)."""
    return int(np.argmax(weights))


def knn_radii(X: np.ndarray, k: int) -> np.ndarray:
    """Distance of each row of ``X`` to its ``k``-th nearest other row.

    Args:
        X: ``(N, D)`` points, ``N > k``.
        k: which neighbour (1 = nearest other point).
    """
    nn = NearestNeighbors(n_neighbors=k).fit(X)
    dists, _ = nn.kneighbors(None, n_neighbors=k)
    return dists[:, k - 1]


def realism_scores(
    query: np.ndarray, reference: np.ndarray, radii: np.ndarray, *, tiny: float = 1e-12
) -> np.ndarray:
    """Realism score of Kynkaanniemi et al. (2019): ``max_i radius_i / ||q - x_i||``.

    A query lies inside the k-NN ball of some reference point (manifold membership) exactly
    when its score is ``>= 1``.

    Args:
        query: ``(M, D)`` points to grade.
        reference: ``(N, D)`` real points.
        radii: ``(N,)`` k-NN radius of each reference point.
        tiny: floor on distances, so an exact copy of a reference point gets a huge finite score.
    """
    scores = np.empty(len(query), dtype=np.float64)
    for start in range(0, len(query), _CHUNK):
        dists = euclidean_distances(query[start : start + _CHUNK], reference)
        scores[start : start + _CHUNK] = (radii[None, :] / np.maximum(dists, tiny)).max(axis=1)
    return scores
