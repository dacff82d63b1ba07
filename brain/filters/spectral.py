"""Spectral initialisation of a UMAP layout (umap-learn's, without importing umap).

The layout starts from the leading non-trivial eigenvectors of the normalised graph Laplacian
``L = I - D^-1/2 W D^-1/2``. A graph of several connected components (common with exact
neighbours on well separated clusters) is laid out component by component around centres from a
spectral embedding of the component centroids. Adapted from umap-learn's ``spectral.py``
(BSD-3-Clause, (c) 2017 Leland McInnes), euclidean metric only.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg
from sklearn.metrics import pairwise_distances


def laplacian_eigenmap(graph: scipy.sparse.spmatrix, dim: int, rng) -> np.ndarray:
    """``(N, dim)`` eigenvectors 2..dim+1 of the normalised Laplacian of a connected graph.

    Falls back to uniform random coordinates in ``[-10, 10]`` when ARPACK does not converge.
    """
    n = graph.shape[0]
    sqrt_degree = np.sqrt(np.asarray(graph.sum(axis=0)).squeeze())
    scale = scipy.sparse.spdiags(1.0 / sqrt_degree, 0, n, n)
    laplacian = scipy.sparse.identity(n, dtype=np.float64) - scale @ graph @ scale
    k = dim + 1
    try:
        eigenvalues, eigenvectors = scipy.sparse.linalg.eigsh(
            laplacian,
            k,
            which="SM",
            ncv=max(2 * k + 1, int(np.sqrt(n))),
            tol=1e-4,
            v0=np.ones(n),
            maxiter=n * 5,
        )
    except scipy.sparse.linalg.ArpackError:
        warnings.warn("spectral initialisation failed; random start", stacklevel=2)
        return rng.uniform(low=-10.0, high=10.0, size=(n, dim))
    order = np.argsort(eigenvalues)[1:k]
    return eigenvectors[:, order]


def component_centres(
    data: np.ndarray, labels: np.ndarray, n_components: int, dim: int, rng
) -> np.ndarray:
    """Centres of the components: a spectral embedding of their centroids' affinities."""
    from sklearn.manifold import SpectralEmbedding

    centroids = np.stack([data[labels == c].mean(axis=0) for c in range(n_components)])
    affinity = np.exp(-(pairwise_distances(centroids) ** 2))
    embedding = SpectralEmbedding(
        n_components=dim, affinity="precomputed", random_state=rng
    ).fit_transform(affinity)
    return embedding / embedding.max()


def spectral_layout(
    data: np.ndarray, graph: scipy.sparse.spmatrix, dim: int, rng: np.random.RandomState
) -> np.ndarray:
    """Spectral start of a layout of ``graph`` (``data`` = the points, for component centres)."""
    n_components, labels = scipy.sparse.csgraph.connected_components(graph)
    if n_components == 1:
        return laplacian_eigenmap(graph, dim, rng)
    if n_components > 2 * dim:
        centres = component_centres(data, labels, n_components, dim, rng)
    else:
        k = int(np.ceil(n_components / 2.0))
        base = np.hstack([np.eye(k), np.zeros((k, dim - k))])
        centres = np.vstack([base, -base])[:n_components]
    result = np.empty((graph.shape[0], dim), dtype=np.float32)
    graph = graph.tocsr()
    for label in range(n_components):
        members = labels == label
        sub = graph[members][:, members]
        distances = pairwise_distances(centres[label : label + 1], centres)
        half_gap = distances[distances > 0.0].min() / 2.0
        size = sub.shape[0]
        if size < 2 * dim or size <= dim + 1:
            offsets = rng.uniform(low=-half_gap, high=half_gap, size=(size, dim))
        else:
            offsets = laplacian_eigenmap(sub, dim, rng)
            offsets = offsets * (half_gap / np.max(np.abs(offsets)))
        result[members] = offsets + centres[label]
    return result
