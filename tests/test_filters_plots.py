"""The filter plots write PNG files."""

from __future__ import annotations

import numpy as np
from PIL import Image

from brain.filters.plots import plot_densities, plot_umap_ellipses


def test_umap_plot_and_densities(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(200, 2))
    rare = np.arange(200) < 50
    real[rare] += 6
    synthetic = rng.normal(loc=6, size=(80, 2))
    passed = np.linalg.norm(synthetic - 6, axis=1) < 1.5
    path = plot_umap_ellipses(
        tmp_path / "plots" / "umap.png",
        real_points=real,
        real_rare=rare,
        synthetic_points=synthetic,
        synthetic_pass=passed,
        means=np.array([[6.0, 6.0], [7.0, 5.0]]),
        covariances=np.stack([np.eye(2), 0.3 * np.eye(2)]),
        chosen=0,
        level=0.7,
        weights=np.array([0.7, 0.3]),
    )
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1]
    density = plot_densities(
        tmp_path / "density.png",
        {"real rare": rng.chisquare(2, 100), "synthetic": rng.chisquare(3, 300), "none": []},
        xlabel="squared Mahalanobis distance",
        threshold=2.4,
        log_x=True,
    )
    with Image.open(density) as image:
        assert image.format == "PNG"
