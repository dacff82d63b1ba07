"""Per-image statistics that tell a plausible image from a damaged one, whatever its class.

A classifier's embedding is built to be invariant to what does not change the class: a blurred
or inverted chromosome 21 still lands near chromosome 21, heavy noise sometimes too. Image
realism is therefore also measured on a few statistics of the pixels themselves, each invariant
to brightness and contrast (which vary from slide to slide):

=====================  =====================================================================
``log_high_freq``      log of the share of the variance left after a Gaussian blur (sd 1 px):
                       high for noise, low for blur
``log_laplacian``      log of the Laplacian's variance over the image's variance (sharpness)
``gradient``           mean gradient magnitude over the standard deviation (edge density)
``polarity``           (median of the border - median of the image) / sd: the sign says
                       whether objects are darker than the background (flips when inverted)
``border_spread``      sd of the border / sd of the image (a clean background is uniform)
``skewness``           skewness of the intensities
``log_kurtosis``       log of the kurtosis of the intensities
=====================  =====================================================================

``bench/bench_filter_quality.py`` measures what they add (RESULTS.md, filter quality).
"""

from __future__ import annotations

import numpy as np

FEATURES = (
    "log_high_freq",
    "log_laplacian",
    "gradient",
    "polarity",
    "border_spread",
    "skewness",
    "log_kurtosis",
)


def _one(gray: np.ndarray) -> list[float]:
    from scipy import ndimage
    from scipy.stats import kurtosis, skew

    spread = float(gray.std()) + 1e-6
    smooth = ndimage.gaussian_filter(gray, 1.0)
    high = float(((gray - smooth) ** 2).mean()) / spread**2
    laplacian = float(ndimage.laplace(gray).var()) / spread**2
    gradient = float(np.hypot(ndimage.sobel(gray, 0), ndimage.sobel(gray, 1)).mean()) / spread
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    values = gray.ravel()
    flat = spread <= 1e-5  # a constant image: skewness and kurtosis are undefined
    return [
        np.log(high + 1e-8),
        np.log(laplacian + 1e-8),
        gradient,
        float(np.median(border) - np.median(gray)) / spread,
        float(border.std()) / spread,
        0.0 if flat else float(skew(values)),
        0.0 if flat else float(np.log(kurtosis(values) + 3.0 + 1e-8)),
    ]


def image_statistics(images: np.ndarray) -> np.ndarray:
    """The :data:`FEATURES` of each image.

    Args:
        images: ``uint8`` ``(N, H, W, C)`` images of one size (channels are averaged).

    Returns:
        float64 array ``(N, len(FEATURES))``.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {images.shape}")
    gray = images.astype(np.float64).mean(axis=3) / 255.0
    return np.array([_one(image) for image in gray], dtype=np.float64).reshape(-1, len(FEATURES))
