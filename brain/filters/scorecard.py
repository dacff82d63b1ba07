"""Set-level fidelity of synthetic samples against the real rare class, in the embedding space.

Four numbers from Naeem et al. (2020, "Reliable fidelity and diversity metrics for generative
models"), computed with k-NN balls around the real samples (radius = distance to the ``k``-th
nearest other real sample), plus authenticity from Alaa et al. (2022):

- ``precision``: share of synthetic samples inside at least one real ball (are they realistic?);
- ``recall``: share of real samples inside at least one synthetic ball (do they cover the real
  class's variety?);
- ``density``: how many real balls contain a synthetic sample, on average, divided by ``k``
  (about 1 when synthetic samples are spread like the real ones; above 1 when they crowd where
  real samples are dense; robust to real outliers, unlike precision);
- ``coverage``: share of real samples whose ball holds at least one synthetic sample (variety,
  robust to synthetic outliers);
- ``authenticity``: share of synthetic samples farther from their nearest real sample than that
  real sample is from its own nearest real neighbour (low values flag memorised copies; about
  0.5 for samples drawn from the real distribution itself).

Pure functions on arrays; the caller picks the space (a classifier's embeddings).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import NearestNeighbors

from brain.errors import InputError
from brain.filters.maths import knn_radii

AUTHENTICITY_WARNING = 0.2
"""Authenticity of passing samples below which a filter run warns: samples drawn like the real
class score about 0.5, interpolations at weight 0.9 scored 0.03-0.10 on real data."""

METRIC_HELP: dict[str, str] = {
    "precision": "share of synthetic samples inside the k-NN balls of the real rare class "
    "(realistic)",
    "recall": "share of real rare samples inside the k-NN balls of the synthetic samples "
    "(variety covered)",
    "density": "mean number of real balls holding a synthetic sample, / k (1 = spread like the "
    "real class; > 1 = crowded where real samples are dense)",
    "coverage": "share of real rare samples whose ball holds a synthetic sample (variety, robust "
    "to outliers)",
    "authenticity": "share of synthetic samples that are not closer to a real sample than its "
    "nearest real neighbour (low = memorised copies; about 0.5 for real data)",
}


def _nearest(reference: np.ndarray, query: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    nn = NearestNeighbors(n_neighbors=min(n, len(reference))).fit(reference)
    return nn.kneighbors(query)


def _inside_counts(query: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each query point, how many balls ``(centres, radii)`` contain it."""
    counts = np.zeros(len(query), dtype=np.int64)
    for start in range(0, len(query), 2048):
        block = query[start : start + 2048]
        dists = np.sqrt(
            np.maximum(
                (block**2).sum(1)[:, None] - 2 * block @ centres.T + (centres**2).sum(1)[None],
                0.0,
            )
        )
        counts[start : start + 2048] = (dists <= radii[None, :]).sum(axis=1)
    return counts


def fidelity_scorecard(real: np.ndarray, synthetic: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Precision, recall, density, coverage and authenticity of ``synthetic`` against ``real``.

    Args:
        real: ``(N, D)`` embeddings of the real rare class (``N > k``).
        synthetic: ``(M, D)`` embeddings of synthetic samples (``M >= 1``; recall needs
            ``M > k``, else it is NaN).
        k: the neighbour that sets a ball's radius (5 in Naeem et al.).

    Returns:
        ``precision``, ``recall``, ``density``, ``coverage``, ``authenticity``, ``k``,
        ``n_real`` and ``n_synthetic``.

    Raises:
        InputError: fewer than ``k + 1`` real samples, no synthetic sample, or widths differ.
    """
    real = np.asarray(real, dtype=np.float64)
    synthetic = np.asarray(synthetic, dtype=np.float64)
    if k < 1:
        raise InputError(f"the scorecard's k must be at least 1, got {k}")
    if real.ndim != 2 or synthetic.ndim != 2 or real.shape[1] != synthetic.shape[1]:
        raise InputError(
            f"real {real.shape} and synthetic {synthetic.shape} embeddings must be 2-D and equally "
            "wide"
        )
    if len(real) <= k:
        raise InputError(
            f"the scorecard needs more than k = {k} real rare samples, got {len(real)}"
        )
    if len(synthetic) == 0:
        raise InputError("the scorecard needs at least one synthetic sample")
    real_radii = knn_radii(real, k)
    inside = _inside_counts(synthetic, real, real_radii)
    _, nearest_synthetic = _nearest(synthetic, real, 1)
    # coverage: the nearest synthetic sample of each real sample lies in its ball
    nearest_dist = np.linalg.norm(real - synthetic[nearest_synthetic[:, 0]], axis=1)
    if len(synthetic) > k:
        synthetic_radii = knn_radii(synthetic, k)
        recall = float((_inside_counts(real, synthetic, synthetic_radii) > 0).mean())
    else:
        recall = float("nan")
    dist_to_real, nearest_real = _nearest(real, synthetic, 1)
    own_gap = knn_radii(real, 1)[nearest_real[:, 0]]
    return {
        "precision": float((inside > 0).mean()),
        "recall": recall,
        "density": float(inside.mean() / k),
        "coverage": float((nearest_dist <= real_radii).mean()),
        "authenticity": float((dist_to_real[:, 0] > own_gap).mean()),
        "k": int(k),
        "n_real": len(real),
        "n_synthetic": len(synthetic),
    }


def generator_scorecards(
    real: np.ndarray,
    real_rare: np.ndarray,
    synthetic: np.ndarray,
    generators: list[str],
    passed: np.ndarray,
) -> tuple[dict[str, Any], list[str]]:
    """The scorecard of each generator's synthetic samples (all, and those passing) against
    the real rare class, with warnings (a small ``k`` for few real rare samples).

    Args:
        real: real embeddings; real_rare: their rare-class mask.
        synthetic: synthetic embeddings; generators: the run that made each;
        passed: whether each passed the filter.
    """
    reference = real[real_rare]
    k = min(5, len(reference) - 1)
    if k < 1:
        return {}, ["no scorecard: fewer than 2 real rare train samples"]
    warnings = []
    if k < 5:
        warnings.append(f"scorecard with k = {k} (only {len(reference)} real rare train samples)")
    made_by = np.array(generators, dtype=object)
    cards: dict[str, Any] = {}
    for generator in sorted(set(generators)):
        mine = made_by == generator
        cards[generator] = {"all": fidelity_scorecard(reference, synthetic[mine], k=k)}
        if (mine & passed).any():
            cards[generator]["pass"] = fidelity_scorecard(reference, synthetic[mine & passed], k=k)
    return cards, warnings


def format_scorecard(card: dict[str, dict]) -> str:
    """``all: precision 0.81 recall ...; pass: ...`` for one generator's scorecard."""
    parts = []
    for subset, values in card.items():
        numbers = " ".join(
            f"{name} {values[name]:.2f}"
            for name in ("precision", "recall", "density", "coverage", "authenticity")
        )
        parts.append(f"{subset} (n {values['n_synthetic']}): {numbers}")
    return "; ".join(parts)
