"""Optional PCA in front of a filter (fitted on the real samples of both classes).

A small exact PCA through the eigendecomposition of the covariance matrix, on one BLAS thread: for
a few tens of thousands of 512-d embeddings it takes well under a second (18,000 x 512: 0.4 s
on a busy 2-core machine, where ``sklearn.decomposition.PCA`` took 5-9 s), and it has no
randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brain.errors import InputError


@dataclass(frozen=True)
class Pca:
    """A fitted projection: ``(X - mean) @ components.T``.

    Attributes:
        mean: ``(D,)`` mean of the fit data.
        components: ``(K, D)`` orthonormal principal axes, largest variance first.
        explained_variance: ``(K,)`` variance along each axis.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Coordinates of the rows of ``X`` on the principal axes (float64)."""
        return (np.asarray(X, dtype=np.float64) - self.mean) @ self.components.T


def principal_axes(X: np.ndarray, n_components: int) -> Pca:
    """The ``n_components`` leading principal axes of ``X`` (rows = samples).

    Each axis is signed so that its largest-magnitude coordinate is positive, which makes the
    result unique.
    """
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    centred = X - mean
    # one BLAS thread: on a shared, busy machine threaded BLAS spins and runs 20x slower here
    with threadpool_limits(limits=1, user_api="blas"):
        covariance = centred.T @ centred / max(len(X) - 1, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][:n_components]
    components = eigenvectors[:, order].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    return Pca(mean, components, np.maximum(eigenvalues[order], 0.0))


def fit_pca(X: np.ndarray, n_components: int | None) -> Pca | None:
    """A PCA keeping at most ``n_components`` dimensions of ``X``, or ``None`` to keep ``X``.

    ``None`` is returned when ``n_components`` is ``None`` or not smaller than the width of
    ``X``; the kept dimensions never exceed the number of samples.
    """
    if n_components is None:
        return None
    if n_components < 1:
        raise InputError(f"pca_components must be at least 1 (or None), got {n_components}")
    kept = min(int(n_components), X.shape[0], X.shape[1])
    if kept >= X.shape[1]:
        return None
    return principal_axes(X, kept)


def apply_pca(pca: Pca | None, X: np.ndarray) -> np.ndarray:
    """``X`` projected by ``pca`` (unchanged when ``pca`` is ``None``), as float64."""
    if pca is None:
        return np.asarray(X, dtype=np.float64)
    return pca.transform(X)
