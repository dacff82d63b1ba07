"""``combined``: pass = realistic AND likely rare AND not a copy (the recommended filter).

Three questions, each answered by its own part:

1. realism (:class:`~brain.filters.realism.RealismFilter`): how typical the sample is of the
   real train data of all classes, as the share ``u`` of real *rare* train samples that are
   less typical (so that the gate's level is the share of real rare images that pass it, also
   for a rare class less typical of the data than the rest); low for images unlike any real
   one. By
   default it is judged on the image statistics of :mod:`brain.filters.image_stats` (noise,
   blur, inverted contrast, broken structure), which the classifier's embedding is built to
   ignore; ``realism="embedding"`` judges it in the embedding space instead, ``"both"`` asks
   both;
2. rare-class posterior (:class:`~brain.filters.class_posterior.ClassPosteriorFilter`), in a
   PCA of the embedding space fitted on the real train samples of both classes:
   ``p = P(rare | x)`` with equal class priors; low for images of the other classes;
3. near-copy: the distance to the nearest real train sample divided by that sample's distance to
   its own nearest real neighbour; below ``copy_ratio`` the sample is a near-copy of a real
   image (memorised), not a new one.

The score is ``min(u, p')`` with ``p' = (p - min_posterior) / (1 - min_posterior)`` clipped to
``[0, 1]``, and 0 for near-copies. At level ``L`` a sample passes when ``score >= 1 - L``: its
realism must beat the least typical ``1 - L`` of the real rare train samples and its posterior must
exceed ``min_posterior`` by the same margin. The default level (0.95) is usually recalibrated on
the real val split (``run_filter(..., level=PassRate())``), since the network that made the
embeddings has seen the train samples and places them more typically than new ones.

:meth:`CombinedFilter.parts` and :meth:`CombinedFilter.reasons` say why each sample was
rejected: ``unrealistic``, ``other-class`` or ``near-copy``.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from brain.errors import InputError
from brain.filters.base import FILTERS, EmbeddingFilter
from brain.filters.class_posterior import ClassPosteriorFilter
from brain.filters.realism import RealismFilter
from brain.filters.reduce import apply_pca

PASS, UNREALISTIC, OTHER_CLASS, NEAR_COPY = "pass", "unrealistic", "other-class", "near-copy"
REALISM_SPACES = ("image", "embedding", "both")


@FILTERS.register("combined")
class CombinedFilter(EmbeddingFilter):
    """Realism gate AND rare-class posterior AND no near-copy.

    Level (an argument of ``decide``, chosen per run): in ``(0, 1)``; a sample passes when
    ``score >= 1 - level`` (see the module docstring); ``None`` = 0.95.

    Args:
        realism: where realism is judged: ``"image"`` (image statistics; needs
            ``image_features`` in ``fit`` and ``score_samples``), ``"embedding"`` or ``"both"``.
        realism_method: ``"mahalanobis"`` or ``"knn"`` (:class:`RealismFilter`).
        posterior_estimator: ``"gaussian"`` or ``"knn"`` (:class:`ClassPosteriorFilter`).
        pca_components: PCA dimensions shared by the parts; ``None`` = no PCA.
        min_posterior: the posterior a sample must exceed (0.5: more likely rare than other).
        copy_ratio: near-copy threshold on the nearest-neighbour distance ratio; ``0``
            switches the near-copy test off.
        k: neighbours of the k-NN variants of the parts.
        other_clusters: k-means clusters of the common class when no fine labels are given.
        random_state: seed of the clustering.

    Attributes:
        realism_: ``{"image": ..., "embedding": ...}``, the fitted realism part(s);
        posterior_: the fitted posterior part.
        reference_: real train points in the PCA space; ``gap_``: each one's distance to its
            nearest other real point (near-copy test).
        default_level_: 0.95.
    """

    uses_fine_labels = True
    uses_image_features = True
    level_help = (
        "in (0, 1): pass when realism and posterior both clear 1 - level (see the filter's "
        "docs); higher lets more through"
    )
    reject_reason = "rejected"

    def __init__(
        self,
        *,
        realism: str = "image",
        realism_method: str = "mahalanobis",
        posterior_estimator: str = "gaussian",
        pca_components: int | None = 32,
        min_posterior: float = 0.5,
        copy_ratio: float = 0.1,
        k: int = 10,
        other_clusters: int = 8,
        random_state: int | None = 0,
    ) -> None:
        self.realism = realism
        self.realism_method = realism_method
        self.posterior_estimator = posterior_estimator
        self.pca_components = pca_components
        self.min_posterior = min_posterior
        self.copy_ratio = copy_ratio
        self.k = k
        self.other_clusters = other_clusters
        self.random_state = random_state

    def _fit(
        self, X: np.ndarray, rare: np.ndarray, fine: np.ndarray | None = None, features=None
    ) -> None:
        if not 0.0 <= self.min_posterior < 1.0:
            raise InputError(f"min_posterior must lie in [0, 1), got {self.min_posterior}")
        if not 0.0 <= self.copy_ratio < 1.0:
            raise InputError(f"copy_ratio must lie in [0, 1), got {self.copy_ratio}")
        if self.realism not in REALISM_SPACES:
            known = ", ".join(REALISM_SPACES)
            raise InputError(f"unknown realism {self.realism!r}; known: {known}")
        if self.realism != "embedding" and features is None:
            raise InputError(
                "the combined filter judges image realism from image statistics: pass "
                "image_features (or realism='embedding')"
            )
        common = {
            "pca_components": self.pca_components,
            "other_clusters": self.other_clusters,
            "random_state": self.random_state,
        }
        self.posterior_ = ClassPosteriorFilter(
            estimator=self.posterior_estimator, k=self.k, **common
        ).fit(X, rare, fine_labels=fine)
        self.realism_ = {}
        if self.realism in ("image", "both"):
            self.realism_["image"] = RealismFilter(
                method=self.realism_method,
                k=min(self.k, 5),
                rank_against="rare",
                **{**common, "pca_components": None},
            ).fit(features, rare, fine_labels=fine)
        if self.realism in ("embedding", "both"):
            self.realism_["embedding"] = RealismFilter(
                method=self.realism_method, k=min(self.k, 5), rank_against="rare", **common
            ).fit(X, rare, fine_labels=fine)
        self.reference_ = apply_pca(self.posterior_.pca_, X)
        self.neighbours_ = NearestNeighbors(n_neighbors=2).fit(self.reference_)
        self.gap_ = self.neighbours_.kneighbors(self.reference_)[0][:, 1]
        self.default_level_ = 0.95

    def _parts(self, X: np.ndarray, features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``realism`` (share of real train samples less typical), ``rare_prob`` (posterior)
        and ``copy_ratio`` (nearest-real distance ratio) of validated samples."""
        dists, index = self.neighbours_.kneighbors(
            apply_pca(self.posterior_.pca_, X), n_neighbors=1
        )
        gap = self.gap_[index[:, 0]]
        ratio = np.where(gap > 0, dists[:, 0] / np.maximum(gap, 1e-300), np.inf)
        ratio = np.where((gap == 0) & (dists[:, 0] == 0), 0.0, ratio)
        inputs = {"image": features, "embedding": X}
        realism = [part._score(inputs[space]) for space, part in self.realism_.items()]
        return {
            "realism": np.minimum.reduce(realism),
            "rare_prob": self.posterior_._score(X),
            "copy_ratio": ratio,
        }

    def _combine(self, parts: dict[str, np.ndarray]) -> np.ndarray:
        margin = (parts["rare_prob"] - self.min_posterior) / (1.0 - self.min_posterior)
        score = np.minimum(parts["realism"], np.clip(margin, 0.0, 1.0))
        return np.where(parts["copy_ratio"] < self.copy_ratio, 0.0, score)

    def _score(self, X: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        return self._combine(self._parts(X, features))

    def reasons(
        self, scores: np.ndarray, parts: dict[str, np.ndarray], level: float | None = None
    ) -> np.ndarray:
        """``pass``, ``unrealistic``, ``other-class`` or ``near-copy`` for each sample at
        ``level``, from :meth:`parts` (the first failing test names the reason)."""
        del scores
        cut = self.threshold(level)
        margin = (parts["rare_prob"] - self.min_posterior) / (1.0 - self.min_posterior)
        reasons = np.full(len(parts["realism"]), PASS, dtype=object)
        copies = parts["copy_ratio"] < self.copy_ratio
        reasons[copies] = NEAR_COPY
        reasons[np.clip(margin, 0.0, 1.0) < cut] = OTHER_CLASS
        reasons[parts["realism"] < cut] = UNREALISTIC
        return reasons

    def _threshold(self, level: float) -> float:
        return 1.0 - level

    def _level_for_threshold(self, threshold: float) -> float:
        return 1.0 - threshold
