"""Gaussian blobs where the right filter decisions are known (shared by the filter tests)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Blobs:
    """Real samples (two rare clusters weighted 0.7 / 0.3, two far normal clusters) + probes.

    ``near`` lies close to the centre of the heavy rare cluster (should pass), ``far`` on the
    normal clusters and ``minor`` on the light rare cluster (should be rejected: the filters
    keep the heaviest component only).
    """

    real: np.ndarray
    rare: np.ndarray
    near: np.ndarray
    far: np.ndarray
    minor: np.ndarray


def make_blobs(seed: int = 0, dim: int = 12, n_rare: int = 200, n_other: int = 300) -> Blobs:
    rng = np.random.default_rng(seed)
    heavy = np.zeros(dim)
    light = np.zeros(dim)
    light[0] = 8.0
    others = np.zeros((2, dim))
    others[0, 1], others[1, 1] = 30.0, -30.0
    n_heavy = int(0.7 * n_rare)
    rare_points = np.vstack(
        [
            heavy + rng.normal(size=(n_heavy, dim)),
            light + rng.normal(size=(n_rare - n_heavy, dim)),
        ]
    )
    other_points = others[rng.integers(0, 2, n_other)] + rng.normal(size=(n_other, dim))
    real = np.vstack([rare_points, other_points])
    rare = np.r_[np.ones(n_rare, bool), np.zeros(n_other, bool)]
    order = rng.permutation(len(real))
    return Blobs(
        real=real[order],
        rare=rare[order],
        near=heavy + 0.3 * rng.normal(size=(40, dim)),
        far=others[rng.integers(0, 2, 40)] + rng.normal(size=(40, dim)),
        minor=light + 0.3 * rng.normal(size=(40, dim)),
    )
