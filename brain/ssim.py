"""Maximum SSIM of each candidate image against a set of reference images.

The SSIM is scikit-image's ``structural_similarity`` with its defaults for 8-bit images
(7 x 7 uniform window, ``K1 = 0.01``, ``K2 = 0.03``, sample covariance, ``data_range = 255``,
mean over the window-valid interior, channels averaged), computed for every
(candidate, reference) pair at once with torch so that "maximum over all real training images"
stays exact and affordable. ``tests/test_ssim.py`` checks it against scikit-image.
"""

from __future__ import annotations

import numpy as np
import torch

WINDOW = 7
K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0


def _window_sums_1d(images: torch.Tensor, dim: int) -> torch.Tensor:
    """Sums over every valid run of ``WINDOW`` values along ``dim`` (cumulative-sum difference)."""
    total = torch.cumsum(images, dim=dim)
    head = total.narrow(dim, WINDOW - 1, total.shape[dim] - WINDOW + 1)
    shifted = torch.cat(
        [
            torch.zeros_like(total.narrow(dim, 0, 1)),
            total.narrow(dim, 0, total.shape[dim] - WINDOW),
        ],
        dim=dim,
    )
    return head - shifted


def _local_means(images: torch.Tensor) -> torch.Tensor:
    """Mean over every valid 7 x 7 window; ``images`` is ``(N, C, H, W)``."""
    return _window_sums_1d(_window_sums_1d(images, 2), 3) / (WINDOW * WINDOW)


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    array = np.asarray(images)
    if array.ndim != 4 or array.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, C) images, got {array.dtype} {array.shape}")
    return torch.from_numpy(array).permute(0, 3, 1, 2).to(torch.float32)


def pairwise_ssim(candidates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """SSIM of every candidate against every reference: an ``(N, M)`` array.

    Both inputs are ``uint8`` ``(N, H, W, C)`` of one shape (at least 7 x 7).
    """
    x, y = _as_tensor(candidates), _as_tensor(references)
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"shapes differ: {tuple(x.shape[1:])} vs {tuple(y.shape[1:])}")
    if min(x.shape[2:]) < WINDOW:
        raise ValueError(f"images must be at least {WINDOW} x {WINDOW}")
    cov_norm = WINDOW * WINDOW / (WINDOW * WINDOW - 1)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    ux, uy = _local_means(x), _local_means(y)  # (N, C, h, w), (M, C, h, w)
    vx = cov_norm * (_local_means(x * x) - ux * ux)
    vy = cov_norm * (_local_means(y * y) - uy * uy)
    out = np.empty((x.shape[0], y.shape[0]))
    for i in range(x.shape[0]):
        uxy = _local_means(x[i : i + 1] * y)  # (M, C, h, w)
        vxy = cov_norm * (uxy - ux[i : i + 1] * uy)
        numerator = (2 * ux[i : i + 1] * uy + c1) * (2 * vxy + c2)
        denominator = (ux[i : i + 1] ** 2 + uy**2 + c1) * (vx[i : i + 1] + vy + c2)
        out[i] = (numerator / denominator).mean(dim=(1, 2, 3)).numpy()
    return out


def max_ssim(
    candidates: np.ndarray, references: np.ndarray, *, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate, the maximum SSIM over ``references`` and the index where it is reached.

    References are processed in chunks of ``chunk`` to bound memory.
    """
    if len(references) == 0:
        raise ValueError("no reference images")
    best = np.full(len(candidates), -np.inf)
    where = np.zeros(len(candidates), dtype=np.int64)
    with torch.inference_mode():
        for start in range(0, len(references), chunk):
            scores = pairwise_ssim(candidates, references[start : start + chunk])
            top = scores.argmax(axis=1)
            value = scores[np.arange(len(candidates)), top]
            better = value > best
            best[better] = value[better]
            where[better] = top[better] + start
    return best, where
