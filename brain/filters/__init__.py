"""Filters that keep the synthetic samples landing where the real rare class lives.

Every filter is an :class:`EmbeddingFilter` (``fit`` / ``score`` / ``decide``) registered in
:data:`FILTERS` by name:

=================  ==========================================================================
``umap_gmm``       UMAP of the real embeddings + Gaussian-mixture ellipse (the reference)
``gmm_full``       the same ellipse test in the embedding space or a PCA of it
``knn_precision``  k-NN manifold membership of the real rare class, realism score
``confidence``     the real classifier's rare-class probability >= threshold
=================  ==========================================================================

Heavy dependencies (numba, umap-learn) are imported only when a UMAP filter is fitted.
"""

from __future__ import annotations

from brain.filters import confidence, gmm_full, knn_precision, umap_gmm
from brain.filters.base import FILTERS, EmbeddingFilter, InputKind, NotFittedError, make_filter
from brain.filters.confidence import ConfidenceFilter
from brain.filters.gmm_full import GmmFullFilter
from brain.filters.knn_precision import KnnPrecisionFilter
from brain.filters.umap_gmm import UmapGmmFilter

__all__ = [
    "FILTERS",
    "ConfidenceFilter",
    "EmbeddingFilter",
    "GmmFullFilter",
    "InputKind",
    "KnnPrecisionFilter",
    "NotFittedError",
    "UmapGmmFilter",
    "confidence",
    "gmm_full",
    "knn_precision",
    "make_filter",
    "umap_gmm",
]
