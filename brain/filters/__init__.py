"""Filters that keep the synthetic samples landing where the real rare class lives.

Every filter is an :class:`EmbeddingFilter` (``fit`` / ``score_samples`` / ``decide``) registered in
:data:`FILTERS` by name:

=================  ==========================================================================
``umap_gmm``       UMAP of the real embeddings + Gaussian-mixture ellipse (the reference)
``gmm_full``       the same ellipse test in the embedding space or a PCA of it
``knn_precision``  k-NN manifold membership of the real rare class, realism score
``confidence``     the real classifier's rare-class probability >= threshold
``class_posterior`` P(rare | x) from models of both real classes (equal priors)
``realism``        distance to the support of the real data of all classes
``combined``       realistic AND likely rare AND not a near-copy (recommended for new users)
=================  ==========================================================================

Heavy dependencies (numba, umap-learn) are imported only when a UMAP filter is fitted.
"""

from __future__ import annotations

from brain.filters import (
    class_posterior,
    combined,
    confidence,
    gmm_full,
    knn_precision,
    realism,
    umap_gmm,
)
from brain.filters.base import FILTERS, EmbeddingFilter, InputKind, NotFittedError, make_filter
from brain.filters.class_posterior import ClassPosteriorFilter
from brain.filters.combined import CombinedFilter
from brain.filters.confidence import ConfidenceFilter
from brain.filters.gmm_full import GmmFullFilter
from brain.filters.knn_precision import KnnPrecisionFilter
from brain.filters.realism import RealismFilter
from brain.filters.umap_gmm import UmapGmmFilter

RECOMMENDED = "combined"
"""The filter suggested to new users (``umap_gmm`` stays the study's reference)."""

__all__ = [
    "FILTERS",
    "RECOMMENDED",
    "ClassPosteriorFilter",
    "CombinedFilter",
    "ConfidenceFilter",
    "EmbeddingFilter",
    "GmmFullFilter",
    "InputKind",
    "KnnPrecisionFilter",
    "NotFittedError",
    "RealismFilter",
    "UmapGmmFilter",
    "class_posterior",
    "combined",
    "confidence",
    "gmm_full",
    "knn_precision",
    "make_filter",
    "realism",
    "umap_gmm",
]
