"""The fast UMAP path follows umap-learn's construction and keeps cluster structure."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.manifold import trustworthiness
from sklearn.neighbors import NearestNeighbors

from brain.filters.fastumap import (
    FastUMAP,
    exact_knn,
    fuzzy_union,
    membership_strengths,
    smooth_knn_dist,
    weighted_average_init,
)


def _clusters(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = rng.normal(scale=10.0, size=(3, 10))
    return centres[labels] + rng.normal(size=(n, 10)), labels


def test_fuzzy_graph_matches_umap_learn():
    from umap.umap_ import fuzzy_simplicial_set

    X, _ = _clusters()
    nn = NearestNeighbors(algorithm="brute").fit(X)
    indices, dists = exact_knn(nn, None, 15)
    assert (indices[:, 0] == np.arange(len(X))).all() and (dists[:, 0] == 0).all()
    expected, sigmas_ref, rhos_ref = fuzzy_simplicial_set(
        X, 15, None, "euclidean", knn_indices=indices, knn_dists=dists
    )
    sigmas, rhos = smooth_knn_dist(dists, 15)
    np.testing.assert_allclose(sigmas, sigmas_ref, rtol=1e-5)
    np.testing.assert_allclose(rhos, rhos_ref, rtol=1e-6)
    rows, cols, vals = membership_strengths(indices, dists, sigmas, rhos, bipartite=False)
    graph = fuzzy_union(scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(X), len(X))))
    assert abs(graph.tocsr() - expected.tocsr()).max() < 1e-5


def test_layout_keeps_clusters_and_is_seeded():
    X, labels = _clusters()
    fitted = FastUMAP(n_epochs=100, random_state=3).fit(X)
    again = FastUMAP(n_epochs=100, random_state=3).fit(X)
    np.testing.assert_array_equal(fitted.embedding_, again.embedding_)
    assert trustworthiness(X, fitted.embedding_, n_neighbors=10) > 0.9
    # new points from a cluster land among that cluster's fitted points
    rng = np.random.default_rng(1)
    new = X[:30] + 0.1 * rng.normal(size=(30, X.shape[1]))
    placed = fitted.transform(new)
    centroids = np.stack([fitted.embedding_[labels == k].mean(axis=0) for k in range(3)])
    nearest = np.argmin(((placed[:, None] - centroids[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == labels[:30]).mean() >= 0.95
    np.testing.assert_array_equal(placed, fitted.transform(new))


def test_weighted_average_init_pins_exact_copies():
    embedding = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]], dtype=np.float32)
    indices = np.array([[0, 1], [2, 1]])
    weights = np.array([[0.5, 0.5], [1.0, 0.3]])
    start = weighted_average_init(indices, weights, embedding)
    np.testing.assert_allclose(start, [[1.0, 0.0], [0.0, 4.0]])
