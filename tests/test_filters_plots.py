"""The filter plots write PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brain.filters.base import FilterOutput
from brain.filters.plots import (
    _density_scale,
    grid_rows,
    plot_densities,
    plot_filter,
    plot_umap_ellipses,
)


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


class _ZeroScoreFilter:
    """What the plots read of a fitted embedding filter (no plane of its own, no mixture) whose
    every score is 0 (e.g. a density far off) and whose threshold is 0."""

    input_kind = "embedding"

    def threshold(self, level: float | None = None) -> float:
        return 0.0


def test_density_axis_is_readable_when_scores_are_zero():
    """A log axis put zero scores at log10(1e-300) = -300; zeros now get a linear axis, and a
    mix of zeros and tiny positive scores a symlog one (linear near 0)."""
    assert _density_scale({"a": np.zeros(5)}, log_x=True, threshold=0.0) == ("linear", 0.0)
    assert _density_scale({"a": np.r_[0.0, 1e-3, 0.5]}, log_x=True) == ("symlog", 1e-3)
    scale, linthresh = _density_scale({"a": np.r_[1e-300, 1e-3, 0.5]}, log_x=True)
    assert scale == "symlog" and linthresh == pytest.approx(0.5e-12)  # 12 decades at most
    assert _density_scale({"a": np.r_[1e-3, 0.5]}, log_x=True, threshold=0.1) == ("log", 0.0)
    assert _density_scale({"a": np.r_[0.0, 0.5]}, log_x=False) == ("linear", 0.0)


def test_plot_filter_renders_all_zero_scores_and_labels_grid_tiles(tmp_path):
    rng = np.random.default_rng(0)
    n = 12
    scores = np.zeros(n)
    passed = np.arange(n) < 4
    reasons = np.where(passed, "pass", "unrealistic").astype(object)
    generators = ["bbdm" if i % 2 else "copies" for i in range(n)]
    images = [rng.integers(0, 255, (8, 8, 1), dtype=np.uint8) for _ in range(n)]
    paths = plot_filter(
        tmp_path,
        _ZeroScoreFilter(),
        FilterOutput(scores),
        (rng.normal(size=(20, 2)), rng.normal(size=(n, 2))),
        real_rare=np.arange(20) < 5,
        passed=passed,
        level=0.9,
        reasons=reasons,
        images=images,
        title="all zero",
        generators=generators,
    )
    assert [Path(p).name for p in paths] == ["umap.png", "density.png", "grid.png"]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG"
    rows = grid_rows(images, scores, passed, reasons, generators)
    captions = {caption for items in rows.values() for _, caption in items}
    assert "copies\npass 0" in captions and "bbdm\nunrealistic 0" in captions
    assert all(
        "\n" not in c
        for items in grid_rows(images, scores, passed, reasons).values()
        for _, c in items
    )
