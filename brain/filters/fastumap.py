"""UMAP with exact neighbours and disk-cached kernels: the fast path of the ``umap_gmm`` filter.

umap-learn spends most of a single fit + transform call on work that does not change the result
much at our scale: approximate neighbour search in 512 dimensions (NN-descent, then a search
index built and compiled for ``transform``) and just-in-time compiling its kernels in every new
process (they are not cached on disk). Here:

- neighbours are exact (brute force with BLAS), which at a few tens of thousands of points in the
  (PCA-reduced) space is faster than NN-descent and removes the search index;
- the fuzzy simplicial set, the spectral initialisation (:mod:`brain.filters.spectral`) and the
  SGD layout follow umap-learn 0.5 step by step (same formulas, same defaults; the SGD in single
  precision), with the numba kernels compiled with ``cache=True`` so a new process loads them
  from ``NUMBA_CACHE_DIR`` instead of compiling, and umap itself is never imported;
- ``transform`` embeds new points like umap-learn: membership strengths to their ``k`` nearest
  fitted points, a weighted-average start, then SGD against the fixed fitted layout.

The kernels are adapted from umap-learn (BSD-3-Clause, (c) 2017 Leland McInnes), ``umap_.py``
and ``layouts.py``; the densMAP terms and parallel variants are left out.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
import scipy.sparse
from scipy.optimize import curve_fit
from sklearn.neighbors import NearestNeighbors

from brain.errors import InputError
from brain.filters.spectral import spectral_layout

SMOOTH_K_TOLERANCE = 1e-5
MIN_K_DIST_SCALE = 1e-3
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT32_MIN, _INT32_MAX = np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1


# -- numba kernels (cached on disk) --------------------------------------------------------------


@numba.njit(
    cache=True,
    locals={
        "psum": numba.types.float32,
        "lo": numba.types.float32,
        "mid": numba.types.float32,
        "hi": numba.types.float32,
    },
)
def _smooth_knn_dist(distances, k, n_iter, local_connectivity):  # pragma: no cover - numba
    """Per-point bandwidth ``sigma`` and nearest distance ``rho`` (umap-learn ``smooth_knn_dist``).

    ``sigma`` solves ``sum_j exp(-(d_ij - rho_i) / sigma_i) = log2(k)`` over neighbours
    ``j >= 1`` by bisection.
    """
    target = np.log2(k)
    n = distances.shape[0]
    rho = np.zeros(n, dtype=np.float32)
    result = np.zeros(n, dtype=np.float32)
    mean_distances = np.mean(distances)
    for i in range(n):
        lo = 0.0
        hi = _FLOAT32_MAX
        mid = 1.0
        ith = distances[i]
        non_zero = ith[ith > 0.0]
        if non_zero.shape[0] >= local_connectivity:
            index = int(np.floor(local_connectivity))
            interpolation = local_connectivity - index
            if index > 0:
                rho[i] = non_zero[index - 1]
                if interpolation > SMOOTH_K_TOLERANCE:
                    rho[i] += interpolation * (non_zero[index] - non_zero[index - 1])
            else:
                rho[i] = interpolation * non_zero[0]
        elif non_zero.shape[0] > 0:
            rho[i] = np.max(non_zero)
        for _ in range(n_iter):
            psum = np.float32(0.0)
            for j in range(1, distances.shape[1]):
                d = distances[i, j] - rho[i]
                if d > 0:
                    psum += np.float32(np.exp(-(d / mid)))
                else:
                    psum += np.float32(1.0)
            if np.fabs(psum - target) < SMOOTH_K_TOLERANCE:
                break
            if psum > target:
                hi = mid
                mid = (lo + hi) / 2.0
            else:
                lo = mid
                if hi >= _FLOAT32_MAX:
                    mid *= 2
                else:
                    mid = (lo + hi) / 2.0
        result[i] = mid
        if rho[i] > 0.0:
            if result[i] < MIN_K_DIST_SCALE * np.mean(ith):
                result[i] = MIN_K_DIST_SCALE * np.mean(ith)
        elif result[i] < MIN_K_DIST_SCALE * mean_distances:
            result[i] = MIN_K_DIST_SCALE * mean_distances
    return result, rho


@numba.njit(fastmath=True, cache=True)
def _clip(value):  # pragma: no cover - numba
    if value > 4.0:
        return 4.0
    if value < -4.0:
        return -4.0
    return value


@numba.njit(cache=True)
def _tau_rand_int(state):  # pragma: no cover - numba
    """umap-learn's Tausworthe generator: a pseudo-random int32, advancing ``state``."""
    state[0] = (((state[0] & 4294967294) << 12) & 0xFFFFFFFF) ^ (
        (((state[0] << 13) & 0xFFFFFFFF) ^ state[0]) >> 19
    )
    state[1] = (((state[1] & 4294967288) << 4) & 0xFFFFFFFF) ^ (
        (((state[1] << 2) & 0xFFFFFFFF) ^ state[1]) >> 25
    )
    state[2] = (((state[2] & 4294967280) << 17) & 0xFFFFFFFF) ^ (
        (((state[2] << 3) & 0xFFFFFFFF) ^ state[2]) >> 11
    )
    return np.int32(state[0] ^ state[1] ^ state[2])


@numba.njit(fastmath=True, cache=True, inline="always")
def _rdist(x, y):  # pragma: no cover - numba
    """Squared Euclidean distance of two float32 points (umap-learn's ``rdist``).

    Inlined into the caller by numba, so the SGD kernel compiles as if the loop were written out
    there (same float32 arithmetic, same layouts).
    """
    result = np.float32(0.0)
    for d in range(x.shape[0]):
        diff = x[d] - y[d]
        result += diff * diff
    return result


@numba.njit(
    fastmath=True,
    cache=True,
    locals={
        "dist_squared": numba.float32,
        "grad_coeff": numba.float32,
        "grad_d": numba.float32,
        "alpha": numba.float32,
    },
)
def _sgd_layout(
    head_embedding,
    tail_embedding,
    head,
    tail,
    n_vertices,
    epochs_per_sample,
    a,
    b,
    rng_state_per_sample,
    gamma,
    initial_alpha,
    negative_sample_rate,
    n_epochs,
    move_other,
):  # pragma: no cover - numba
    """All epochs of umap-learn's ``optimize_layout_euclidean`` (serial, no densMAP).

    Edge ``i`` (``head[i] -> tail[i]``) is sampled every ``epochs_per_sample[i]`` epochs: an
    attractive step with gradient ``-2ab d^(2(b-1)) / (1 + a d^(2b))``, then negative samples
    drawn uniformly with a repulsive step ``2 gamma b / ((0.001 + d^2)(1 + a d^(2b)))``; each
    coordinate step is clipped to [-4, 4] and scaled by the learning rate ``alpha``, which
    decays linearly from ``initial_alpha``.
    """
    dim = head_embedding.shape[1]
    one = np.float32(1.0)
    epochs_per_negative_sample = epochs_per_sample / negative_sample_rate
    epoch_of_next_negative_sample = epochs_per_negative_sample.copy()
    epoch_of_next_sample = epochs_per_sample.copy()
    alpha = initial_alpha
    for n in range(n_epochs):
        for i in range(epochs_per_sample.shape[0]):
            if epoch_of_next_sample[i] > n:
                continue
            j = head[i]
            k = tail[i]
            current = head_embedding[j]
            other = tail_embedding[k]
            dist_squared = _rdist(current, other)
            if dist_squared > 0.0:
                grad_coeff = -2.0 * a * b * pow(dist_squared, b - one)
                grad_coeff /= a * pow(dist_squared, b) + one
            else:
                grad_coeff = 0.0
            for d in range(dim):
                grad_d = _clip(grad_coeff * (current[d] - other[d]))
                current[d] += grad_d * alpha
                if move_other:
                    other[d] += -grad_d * alpha
            epoch_of_next_sample[i] += epochs_per_sample[i]
            n_neg_samples = int(
                (n - epoch_of_next_negative_sample[i]) / epochs_per_negative_sample[i]
            )
            for _ in range(n_neg_samples):
                k = _tau_rand_int(rng_state_per_sample[j]) % n_vertices
                other = tail_embedding[k]
                dist_squared = _rdist(current, other)
                if dist_squared > 0.0:
                    grad_coeff = 2.0 * gamma * b
                    grad_coeff /= (np.float32(0.001) + dist_squared) * (
                        a * pow(dist_squared, b) + one
                    )
                elif j == k:
                    continue
                else:
                    grad_coeff = 0.0
                for d in range(dim):
                    if grad_coeff > 0.0:
                        grad_d = _clip(grad_coeff * (current[d] - other[d]))
                    else:
                        grad_d = 0.0
                    current[d] += grad_d * alpha
            epoch_of_next_negative_sample[i] += n_neg_samples * epochs_per_negative_sample[i]
        alpha = initial_alpha * (1.0 - (float(n) / float(n_epochs)))
    return head_embedding


# -- small pure functions ------------------------------------------------------------------------


def find_ab_params(spread: float, min_dist: float) -> tuple[float, float]:
    """``a, b`` of the low-dimensional similarity ``1 / (1 + a d^(2b))`` (umap-learn's fit)."""

    def curve(x: np.ndarray, a: float, b: float) -> np.ndarray:
        return 1.0 / (1.0 + a * x ** (2 * b))

    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    params, _ = curve_fit(curve, xv, yv)
    return float(params[0]), float(params[1])


def smooth_knn_dist(
    distances: np.ndarray, k: float, *, local_connectivity: float = 1.0, n_iter: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Per-point ``(sigma, rho)`` for the fuzzy neighbourhood (see :func:`_smooth_knn_dist`)."""
    distances = np.ascontiguousarray(distances, dtype=np.float32)
    return _smooth_knn_dist(distances, float(k), int(n_iter), float(local_connectivity))


def membership_strengths(
    indices: np.ndarray,
    distances: np.ndarray,
    sigmas: np.ndarray,
    rhos: np.ndarray,
    *,
    bipartite: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COO ``(rows, cols, vals)`` with ``vals = exp(-(d - rho) / sigma)`` (1 within ``rho``).

    Self-edges get 0 unless ``bipartite`` (new points against fitted ones).
    """
    n, k = indices.shape
    excess = distances - rhos[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vals = np.exp(-(excess / sigmas[:, None])).astype(np.float32)
    vals[(excess <= 0.0) | (sigmas[:, None] == 0.0)] = 1.0
    if not bipartite:
        vals[indices == np.arange(n)[:, None]] = 0.0
    rows = np.repeat(np.arange(n, dtype=np.int32), k)
    keep = indices.ravel() >= 0
    return rows[keep], indices.ravel()[keep].astype(np.int32), vals.ravel()[keep]


def fuzzy_union(graph: scipy.sparse.spmatrix, mix_ratio: float = 1.0) -> scipy.sparse.coo_matrix:
    """Symmetrise directed memberships: ``mix (P + P^T - P o P^T) + (1 - mix) P o P^T``."""
    graph = graph.tocsr()
    graph.eliminate_zeros()
    transpose = graph.transpose().tocsr()
    product = graph.multiply(transpose)
    result = mix_ratio * (graph + transpose - product) + (1.0 - mix_ratio) * product
    result = scipy.sparse.coo_matrix(result)
    result.eliminate_zeros()
    return result


def epochs_per_sample(weights: np.ndarray, n_epochs: int) -> np.ndarray:
    """How many epochs pass between two samples of each edge (umap-learn)."""
    result = -np.ones(weights.shape[0], dtype=np.float64)
    n_samples = n_epochs * (weights / weights.max())
    result[n_samples > 0] = float(n_epochs) / n_samples[n_samples > 0]
    return result


def prune_weak_edges(graph: scipy.sparse.coo_matrix, n_epochs: int) -> scipy.sparse.coo_matrix:
    """Drop edges too weak to be sampled once in ``n_epochs`` epochs (``w < max(w) / n_epochs``)."""
    graph = graph.tocoo(copy=True)
    graph.sum_duplicates()
    graph.data[graph.data < graph.data.max() / float(n_epochs)] = 0.0
    graph.eliminate_zeros()
    return graph


def default_fit_epochs(n_points: int) -> int:
    """umap-learn's default SGD epochs for fitting ``n_points``: 500 up to 10,000, else 200."""
    return 500 if n_points <= 10000 else 200


def exact_knn(
    nn: NearestNeighbors, query: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``k`` exact nearest fitted points of each query row as ``(int32 indices, float32 dists)``.

    With ``query=None`` the neighbours of the fitted points themselves are returned, each point
    first at distance 0 (as umap-learn's neighbour search returns them).
    """
    if query is None:
        dists, indices = nn.kneighbors(None, n_neighbors=k - 1)
        n = indices.shape[0]
        indices = np.hstack([np.arange(n)[:, None], indices])
        dists = np.hstack([np.zeros((n, 1)), dists])
    else:
        dists, indices = nn.kneighbors(query, n_neighbors=k)
    return indices.astype(np.int32), dists.astype(np.float32)


def spectral_init(graph: scipy.sparse.spmatrix, data: np.ndarray, dim: int, rng) -> np.ndarray:
    """umap-learn's spectral initialisation, scaled to ``[0, 10]`` per axis with tiny noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        layout = spectral_layout(data, graph, dim, rng)
    layout = (layout * (10.0 / np.abs(layout).max())).astype(np.float32)
    layout = layout + rng.normal(scale=0.0001, size=layout.shape).astype(np.float32)
    span = layout.max(axis=0) - layout.min(axis=0)
    return (10.0 * (layout - layout.min(axis=0)) / span).astype(np.float32, order="C")


def _one_blas_thread():
    """Run BLAS on one thread: threaded BLAS spins badly on a busy shared machine (the
    neighbour search keeps its OpenMP threads)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _rng_state_per_sample(rng, head_embedding: np.ndarray) -> np.ndarray:
    state = rng.randint(_INT32_MIN, _INT32_MAX, 3).astype(np.int64)
    offset = head_embedding[:, 0].astype(np.float64).view(np.int64).reshape(-1, 1)
    return np.full((head_embedding.shape[0], 3), state, dtype=np.int64) + offset


# -- the estimator -------------------------------------------------------------------------------


class FastUMAP:
    """UMAP (euclidean) with exact neighbours and cached kernels; see the module docstring.

    Args:
        n_neighbors: neighbourhood size ``k``.
        n_components: output dimensions.
        min_dist, spread: shape of the low-dimensional similarity curve.
        n_epochs: SGD epochs for ``fit``; ``None`` = umap-learn's default (500 up to 10,000
            points, 200 above).
        transform_epochs: SGD epochs for ``transform``; ``None`` = ``n_epochs // 3`` when
            ``n_epochs`` is set, else umap-learn's default (100 up to 10,000 points, 30 above);
            0 = keep new points at the weighted mean of their neighbours' positions.
        learning_rate, repulsion_strength, negative_sample_rate, local_connectivity,
        set_op_mix_ratio: as in umap-learn.
        random_state: seed of the initialisation noise and the negative sampling.

    Attributes:
        embedding_: ``(N, n_components)`` float32 layout of the fitted points.
        graph_: the symmetric fuzzy graph (COO).
        a_, b_: similarity curve parameters.
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 15,
        n_components: int = 2,
        min_dist: float = 0.1,
        spread: float = 1.0,
        n_epochs: int | None = None,
        transform_epochs: int | None = None,
        learning_rate: float = 1.0,
        repulsion_strength: float = 1.0,
        negative_sample_rate: int = 5,
        local_connectivity: float = 1.0,
        set_op_mix_ratio: float = 1.0,
        random_state: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.min_dist = min_dist
        self.spread = spread
        self.n_epochs = n_epochs
        self.transform_epochs = transform_epochs
        self.learning_rate = learning_rate
        self.repulsion_strength = repulsion_strength
        self.negative_sample_rate = negative_sample_rate
        self.local_connectivity = local_connectivity
        self.set_op_mix_ratio = set_op_mix_ratio
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> FastUMAP:
        """Lay out ``X`` (float array ``(N, D)``, ``N > n_neighbors``) in ``n_components``-D."""
        with _one_blas_thread():
            return self._fit(np.ascontiguousarray(X, dtype=np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Embed new points into the fitted layout (the fitted points do not move)."""
        with _one_blas_thread():
            return self._transform(np.ascontiguousarray(X, dtype=np.float32))

    def _fit(self, X: np.ndarray) -> FastUMAP:
        if X.shape[0] <= self.n_neighbors:
            raise InputError(
                f"UMAP needs more than n_neighbors={self.n_neighbors} points, got {X.shape[0]}"
            )
        rng = np.random.RandomState(self.random_state)
        self.a_, self.b_ = find_ab_params(self.spread, self.min_dist)
        self.nn_ = NearestNeighbors(algorithm="brute").fit(X)
        indices, dists = exact_knn(self.nn_, None, self.n_neighbors)
        sigmas, rhos = smooth_knn_dist(
            dists, self.n_neighbors, local_connectivity=self.local_connectivity
        )
        rows, cols, vals = membership_strengths(indices, dists, sigmas, rhos, bipartite=False)
        directed = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(X), len(X)))
        self.graph_ = fuzzy_union(directed, self.set_op_mix_ratio)

        default = default_fit_epochs(len(X))
        n_epochs = default if self.n_epochs is None else int(self.n_epochs)
        # umap-learn prunes by the default epoch count when asked for very few epochs
        graph = prune_weak_edges(self.graph_, n_epochs if n_epochs > 10 else default)
        embedding = spectral_init(graph.tocsr(), X, self.n_components, rng)
        self.embedding_ = self._optimize(embedding, embedding, graph, n_epochs, rng, True)
        self.n_fit_ = len(X)
        return self

    def _transform(self, X: np.ndarray) -> np.ndarray:
        indices, dists = exact_knn(self.nn_, X, self.n_neighbors)
        sigmas, rhos = smooth_knn_dist(
            dists, self.n_neighbors, local_connectivity=max(0.0, self.local_connectivity - 1.0)
        )
        rows, cols, vals = membership_strengths(indices, dists, sigmas, rhos, bipartite=True)
        graph = scipy.sparse.coo_matrix((vals, (rows, cols)), shape=(len(X), self.n_fit_))
        start = weighted_average_init(indices, vals.reshape(indices.shape), self.embedding_)
        n_epochs = self._transform_epochs(len(X))
        if n_epochs == 0:
            return start
        graph = prune_weak_edges(graph, n_epochs)
        rng = np.random.RandomState(self.random_state)
        tail = self.embedding_.copy()
        return self._optimize(start, tail, graph, n_epochs, rng, False, alpha_scale=0.25)

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """``fit(X).embedding_``."""
        return self.fit(X).embedding_

    def _transform_epochs(self, n: int) -> int:
        if self.transform_epochs is not None:
            return int(self.transform_epochs)
        if self.n_epochs is not None:
            return max(1, int(self.n_epochs // 3))
        return 100 if n <= 10000 else 30

    def _optimize(
        self,
        head_embedding: np.ndarray,
        tail_embedding: np.ndarray,
        graph: scipy.sparse.coo_matrix,
        n_epochs: int,
        rng: np.random.RandomState,
        move_other: bool,
        alpha_scale: float = 1.0,
    ) -> np.ndarray:
        schedule = epochs_per_sample(graph.data, n_epochs)
        return _sgd_layout(
            head_embedding,
            tail_embedding,
            graph.row.astype(np.int32),
            graph.col.astype(np.int32),
            tail_embedding.shape[0],
            schedule,
            np.float32(self.a_),
            np.float32(self.b_),
            _rng_state_per_sample(rng, head_embedding),
            np.float32(self.repulsion_strength),
            np.float32(self.learning_rate * alpha_scale),
            float(self.negative_sample_rate),
            int(n_epochs),
            move_other,
        )


def weighted_average_init(
    indices: np.ndarray, weights: np.ndarray, embedding: np.ndarray
) -> np.ndarray:
    """Start new points at the membership-weighted mean of their neighbours' positions.

    A neighbour at membership 1 (an exact duplicate) pins the new point on it, as in umap-learn.
    """
    total = weights.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = weights / total
    start = np.einsum("nk,nkd->nd", normalised, embedding[indices]).astype(np.float32)
    exact = weights == 1.0
    has_exact = exact.any(axis=1)
    first = exact.argmax(axis=1)
    start[has_exact] = embedding[indices[has_exact, first[has_exact]]]
    start[total[:, 0] == 0] = np.nan
    return np.ascontiguousarray(start)
