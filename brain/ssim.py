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


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"shapes differ: {tuple(x.shape[1:])} vs {tuple(y.shape[1:])}")
    if min(x.shape[2:]) < WINDOW:
        raise ValueError(f"images must be at least {WINDOW} x {WINDOW}")


def _ssim_means(ux, uy, vx, vy, vxy) -> torch.Tensor:
    """The SSIM map from local means, variances and covariance, averaged per image."""
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux**2 + uy**2 + c1) * (vx + vy + c2)
    return (numerator / denominator).mean(dim=(1, 2, 3))


def _local_variance(x: torch.Tensor, y: torch.Tensor, ux, uy) -> torch.Tensor:
    """Sample (co)variance of ``x`` and ``y`` over every valid window."""
    cov_norm = WINDOW * WINDOW / (WINDOW * WINDOW - 1)
    return cov_norm * (_local_means(x * y) - ux * uy)


def pairwise_ssim(candidates: np.ndarray, references: np.ndarray) -> np.ndarray:
    """SSIM of every candidate against every reference: an ``(N, M)`` array.

    Both inputs are ``uint8`` ``(N, H, W, C)`` of one shape (at least 7 x 7).
    """
    x, y = _as_tensor(candidates), _as_tensor(references)
    _check_pair(x, y)
    ux, uy = _local_means(x), _local_means(y)  # (N, C, h, w), (M, C, h, w)
    vx, vy = _local_variance(x, x, ux, ux), _local_variance(y, y, uy, uy)
    out = np.empty((x.shape[0], y.shape[0]))
    for i in range(x.shape[0]):
        one = slice(i, i + 1)
        vxy = _local_variance(x[one], y, ux[one], uy)  # (M, C, h, w)
        out[i] = _ssim_means(ux[one], uy, vx[one], vy, vxy).numpy()
    return out


def paired_ssim(first: np.ndarray, second: np.ndarray, *, chunk: int = 1024) -> np.ndarray:
    """SSIM of ``first[i]`` against ``second[i]`` for every ``i``: an ``(N,)`` array.

    Both inputs are ``uint8`` ``(N, H, W, C)`` of one shape (at least 7 x 7); pairs are
    processed ``chunk`` at a time to bound memory.
    """
    if len(first) != len(second):
        raise ValueError(f"{len(first)} images paired with {len(second)}")
    out = np.empty(len(first))
    with torch.inference_mode():
        for start in range(0, len(first), chunk):
            x = _as_tensor(first[start : start + chunk])
            y = _as_tensor(second[start : start + chunk])
            _check_pair(x, y)
            ux, uy = _local_means(x), _local_means(y)
            vx, vy = _local_variance(x, x, ux, ux), _local_variance(y, y, uy, uy)
            vxy = _local_variance(x, y, ux, uy)
            out[start : start + len(x)] = _ssim_means(ux, uy, vx, vy, vxy).numpy()
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
