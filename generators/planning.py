"""Planning a generation run on arrays: which ``(source, seed)`` pairs, and how many images a
source can give before it repeats itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from generators.base import Generator

MAX_HISTORY_POINTS = 2000


def plan_pairs(
    n_sources: int, n: int, seed: int, weights: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """The first ``n`` ``(source index, sample seed)`` pairs of a run, deterministically.

    Sources are visited in an order drawn from ``seed``; round ``r`` uses sample seed
    ``seed + r``. With ``weights`` (ADASYN), source ``i`` gets about ``n * weights[i]`` pairs
    (largest remainders), interleaved by round.
    """
    order = np.random.default_rng(seed).permutation(n_sources)
    if weights is None:
        return [(int(order[k % n_sources]), seed + k // n_sources) for k in range(n)]
    share = np.asarray(weights, dtype=np.float64) * n
    counts = np.floor(share).astype(int)
    remainder = share - counts
    for i in np.argsort(-remainder, kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    pairs = [
        (int(i), seed + r)
        for r in range(int(counts.max(initial=0)))
        for i in order
        if counts[i] > r
    ]
    return pairs[:n]


def distinct_only(
    generator: Generator,
    plan: list[tuple[int, int]],
    wanted: int,
    read_sources: Callable[[list[int]], np.ndarray],
) -> tuple[list[tuple[int, int]], list[str]]:
    """``plan`` without the pairs that would repeat an image of their source (for generators
    with a finite set of outputs per source), and a warning when some were dropped;
    ``read_sources(index)`` gives the source images at positions ``index``."""
    if not generator.finite_outputs:
        return plan, []
    used = sorted({i for i, _ in plan})
    limits = generator.distinct_images(read_sources(used))
    limit = dict(zip(used, limits.tolist(), strict=True))
    counts: Counter[int] = Counter()
    kept = []
    for i, sample_seed in plan:
        counts[i] += 1
        if counts[i] <= limit[i]:
            kept.append((i, sample_seed))
    if len(kept) == len(plan):
        return plan, []
    warning = (
        f"{generator.method} can make only {sum(limit.values())} different images from these "
        f"{len(used)} source images; the run holds {len(kept)} of the {wanted} asked (more "
        "rare-class images give more)"
    )
    return kept, [warning]


def downsample_history(history: list[float]) -> tuple[list[float], int]:
    """At most ``MAX_HISTORY_POINTS`` means of consecutive steps, and the steps per point."""
    every = max(1, -(-len(history) // MAX_HISTORY_POINTS))
    values = np.asarray(history, dtype=np.float64)
    points = [float(values[i : i + every].mean()) for i in range(0, len(values), every)]
    return points, every
