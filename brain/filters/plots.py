"""PNG plots of a filter run: the UMAP plane with the mixture ellipses, score densities and a
grid of samples by score (:func:`plot_filter` writes all three), and what they show, computed
here from what a fitted filter exposes (the estimators lay out nothing themselves):

- :func:`plane_points`: a 2-D layout of the real and the new samples (also the App's
  embeddings panel): the filter's own plane where it tests in one (``embedding_``, as
  ``umap_gmm``), else a seeded UMAP of the embeddings;
- :func:`plane_ellipses`: the mixture components drawn in that plane (``umap_gmm`` only);
- :func:`diagnostic`: the quantity the pass threshold cuts, for the density plot.

matplotlib is driven through its Agg canvas (no display, no global pyplot state).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain.filters.base import EmbeddingFilter, FilterOutput, as_float_matrix
from brain.filters.ellipse import EllipseFilter
from brain.filters.maths import ellipse_geometry
from brain.filters.reduce import apply_pca, fit_pca

# (label, colour, marker size), drawn in this order
_GROUPS = (
    ("real, other classes", "#9e9e9e", 3),
    ("synthetic, reject", "#d62728", 3),
    ("synthetic, pass", "#2ca02c", 3),
    ("real, rare class", "#1f77b4", 7),
)
_DENSITY_COLOURS = ("#1f77b4", "#2ca02c", "#d62728", "#9e9e9e", "#9467bd", "#ff7f0e")
_LOG_DECADES = 12
"""A log axis of the densities spans at most this many decades below the largest value."""
_REASON_COLOURS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


LAYOUT_PCA_COMPONENTS = 50
LAYOUT_EPOCHS = 100
"""The UMAP layout of filters without a plane of their own: PCA to this many dimensions, then
this many SGD epochs."""


@dataclass(frozen=True)
class Ellipses:
    """Gaussian components drawn in a filter's plane (:func:`plane_ellipses`).

    Attributes:
        means: ``(K, 2)`` centres; covariances: ``(K, 2, 2)``; weights: ``(K,)``.
        chosen: the component whose ellipse decides pass or reject.
    """

    means: np.ndarray
    covariances: np.ndarray
    weights: np.ndarray
    chosen: int


@dataclass(frozen=True)
class Diagnostic:
    """The quantity a filter's pass threshold cuts, for a density plot (:func:`diagnostic`).

    Attributes:
        label: what the values are (the plot's x axis).
        values: one value per scored sample.
        real: one value per real sample the filter was fitted on (``None``: not available).
        threshold: where the pass threshold lies on that axis at the level asked.
        log_scale: whether the values span orders of magnitude (plot on a log axis).
    """

    label: str
    values: np.ndarray
    real: np.ndarray | None
    threshold: float
    log_scale: bool


def _own_plane(flt: EmbeddingFilter) -> np.ndarray | None:
    """The 2-D plane ``flt`` tests in (its fitted ``embedding_``), or ``None``."""
    return getattr(flt, "embedding_", None)


def plane_points(
    flt: EmbeddingFilter,
    X_real: object,
    X_new: object,
    output: FilterOutput | None = None,
    *,
    random_state: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """2-D points of the real samples ``flt`` was fitted on and of new samples, for plots and
    the App's embeddings panel.

    A filter that tests in a plane of its own (``umap_gmm``: its ``embedding_`` and
    ``transform``) gives that plane; for the others this lays out a UMAP of the embeddings
    (PCA to :data:`LAYOUT_PCA_COMPONENTS` dimensions, :data:`LAYOUT_EPOCHS` epochs, seeded by
    ``random_state``: the same seed gives the same points).

    Args:
        flt: the fitted filter.
        X_real: the real samples given to ``fit``.
        X_new: the new samples.
        output: ``flt.evaluate(X_new)``, whose points are reused where they are the plane.
        random_state: seed of the layout.
    """
    own = _own_plane(flt)
    if own is not None:
        points = output.points if output is not None else None
        return own, flt.transform(X_new) if points is None else points
    from brain.filters.fastumap import FastUMAP  # numba: only when a layout is drawn

    real = as_float_matrix(X_real, name="real samples")
    new = as_float_matrix(X_new, name="samples to place")
    pca = fit_pca(real, LAYOUT_PCA_COMPONENTS)
    layout = FastUMAP(n_epochs=LAYOUT_EPOCHS, random_state=random_state)
    layout.fit(apply_pca(pca, real))
    return layout.embedding_, layout.transform(apply_pca(pca, new))


def plane_ellipses(flt: EmbeddingFilter) -> Ellipses | None:
    """The Gaussian mixture of the real rare class in the plane of :func:`plane_points` and the
    chosen component, for an ellipse filter that tests in that plane (``None``: nothing to
    draw)."""
    if not isinstance(flt, EllipseFilter) or _own_plane(flt) is None:
        return None
    flt.check_is_fitted()
    return Ellipses(
        means=flt.mixture_.means_,
        covariances=flt.covariances_,
        weights=flt.mixture_.weights_,
        chosen=flt.component_,
    )


def diagnostic(
    flt: EmbeddingFilter, output: FilterOutput, level: float | None = None
) -> Diagnostic:
    """What the pass threshold of ``flt`` cuts at ``level``: for the ellipse filters the squared
    Mahalanobis distances to the chosen component (of the scored samples and of the real fit
    samples) cut at the ellipse's radius, for the others the scores themselves.

    Args:
        flt: the fitted filter.
        output: ``flt.evaluate`` of the scored samples (with their points, for ellipse filters).
        level: the level decided at (``None``: the filter's default).
    """
    if isinstance(flt, EllipseFilter):
        if output.points is None:
            raise ValueError("diagnostic needs the output of evaluate (with points)")
        return Diagnostic(
            label="squared Mahalanobis distance to the filter component",
            values=flt.distance_sq_transformed(output.points),
            real=flt.distance_sq_transformed(flt.fit_points_),
            threshold=flt.radius_sq(level),
            log_scale=True,
        )
    return Diagnostic(
        label="score",
        values=np.asarray(output.scores),
        real=None,
        threshold=float(flt.threshold(level)),
        log_scale=flt.input_kind == "embedding",
    )


def _figure(width: float = 6.5, height: float = 5.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def plot_umap_ellipses(
    path: str | Path,
    *,
    real_points: np.ndarray,
    real_rare: np.ndarray,
    synthetic_points: np.ndarray,
    synthetic_pass: np.ndarray,
    means: np.ndarray,
    covariances: np.ndarray,
    chosen: int,
    level: float,
    weights: np.ndarray | None = None,
    title: str | None = None,
    synthetic_reasons: np.ndarray | None = None,
) -> Path:
    """Scatter of the UMAP plane with the mixture's confidence ellipses at ``level``.

    Two panels: the whole plane, and a zoom on the real rare class.

    Args:
        path: PNG file to write.
        real_points: ``(N, 2)`` UMAP coordinates of the real samples.
        real_rare: ``(N,)`` rare-class mask of the real samples.
        synthetic_points: ``(M, 2)`` UMAP coordinates of the synthetic samples.
        synthetic_pass: ``(M,)`` pass mask of the synthetic samples.
        means, covariances: ``(K, 2)`` and ``(K, 2, 2)`` mixture components.
        chosen: index of the component used as the filter (drawn solid, the others dashed).
        level: confidence level of the drawn ellipses.
        weights: ``(K,)`` component weights, shown in the legend.
        title: figure title.
        synthetic_reasons: ``(M,)`` why each synthetic sample was rejected (``pass`` for the
            passing ones); rejected samples are then coloured by reason.

    Returns:
        ``path``.
    """
    real_rare = np.asarray(real_rare, dtype=bool)
    synthetic_pass = np.asarray(synthetic_pass, dtype=bool)
    styles = {label: (colour, size) for label, colour, size in _GROUPS}
    layers = [("real, other classes", real_points, ~real_rare)]
    if synthetic_reasons is None:
        layers.append(("synthetic, reject", synthetic_points, ~synthetic_pass))
    else:
        reasons = np.asarray(synthetic_reasons, dtype=object)
        for index, reason in enumerate(sorted(set(reasons[~synthetic_pass].tolist()))):
            label = f"synthetic, {reason}"
            styles[label] = (_REASON_COLOURS[index % len(_REASON_COLOURS)], 3)
            layers.append((label, synthetic_points, ~synthetic_pass & (reasons == reason)))
    layers += [
        ("synthetic, pass", synthetic_points, synthetic_pass),
        ("real, rare class", real_points, real_rare),
    ]
    figure = _figure(12.0, 5.5)
    overview, zoom = figure.subplots(1, 2)
    for axes in (overview, zoom):
        _draw_layers(axes, layers, styles)
        _draw_ellipses(axes, means, covariances, chosen, level, weights)
        axes.set_xlabel("UMAP 1")
        axes.set_ylabel("UMAP 2")
    overview.set_title(title or f"mixture ellipses at level {level:.3f}")
    zoom.set_title("around the real rare class")
    _zoom_to(zoom, real_points[real_rare] if real_rare.any() else real_points, means)
    overview.legend(loc="best", fontsize=7, markerscale=3)
    return _save(figure, path)


def _draw_layers(axes, layers, styles) -> None:
    for order, (label, points, mask) in enumerate(layers):
        colour, size = styles[label]
        if mask.any():
            axes.scatter(
                points[mask, 0],
                points[mask, 1],
                s=size,
                c=colour,
                alpha=0.5,
                linewidths=0,
                label=f"{label} ({int(mask.sum())})",
                zorder=order + 1,
                rasterized=True,
            )


def _draw_ellipses(axes, means, covariances, chosen, level, weights) -> None:
    from matplotlib.patches import Ellipse

    for k, (mean, covariance) in enumerate(zip(means, covariances, strict=True)):
        width, height, angle = ellipse_geometry(mean, covariance, level)
        weight = f", weight {weights[k]:.2f}" if weights is not None else ""
        axes.add_patch(
            Ellipse(
                tuple(mean),
                width,
                height,
                angle=angle,
                fill=False,
                color="black",
                linewidth=2.0 if k == chosen else 1.0,
                linestyle="-" if k == chosen else "--",
                zorder=20,
                label=f"component {k}{' (filter)' if k == chosen else ''}{weight}",
            )
        )


def _zoom_to(axes, points: np.ndarray, means: np.ndarray) -> None:
    box = np.vstack([points, means])
    low, high = box.min(axis=0), box.max(axis=0)
    pad = 0.15 * np.maximum(high - low, 1e-6)
    axes.set_xlim(low[0] - pad[0], high[0] + pad[0])
    axes.set_ylim(low[1] - pad[1], high[1] + pad[1])


def _finite_values(groups: Mapping[str, np.ndarray], threshold: float | None) -> np.ndarray:
    """Every finite value of ``groups``, and the threshold."""
    parts = [np.asarray(v, dtype=np.float64).ravel() for v in groups.values()]
    values = np.concatenate([*parts, np.array([] if threshold is None else [threshold])])
    return values[np.isfinite(values)]


def _density_scale(
    groups: Mapping[str, np.ndarray], log_x: bool, threshold: float | None = None
) -> tuple[str, float]:
    """The x axis of :func:`plot_densities`: ``("linear", 0)``; ``("log", 0)`` when ``log_x``
    and every value (and the threshold) is positive within :data:`_LOG_DECADES` decades of the
    largest; else ``("symlog", linthresh)``: linear below the smallest positive value kept (so
    zeros, which a log axis would put at minus infinity, sit at 0), logarithmic above it."""
    if not log_x:
        return "linear", 0.0
    values = _finite_values(groups, threshold)
    positive = values[values > 0]
    if positive.size == 0:
        return "linear", 0.0
    floor = positive.max() * 10.0**-_LOG_DECADES
    if positive.size == values.size and positive.min() >= floor:
        return "log", 0.0
    return "symlog", float(max(positive.min(), floor))


def _axis_transform(scale: str, linthresh: float):
    """The matplotlib transform of ``scale`` (densities are estimated in its coordinates)."""
    from matplotlib.scale import LogTransform, SymmetricalLogTransform
    from matplotlib.transforms import IdentityTransform

    if scale == "log":
        return LogTransform(10)
    if scale == "symlog":
        return SymmetricalLogTransform(10, linthresh, 1.0)
    return IdentityTransform()


def _widen_single_value(
    axes, groups: Mapping[str, np.ndarray], threshold: float | None, scale: str
) -> None:
    """Centre the x axis on the one value shown when every value (and the threshold) is the
    same, e.g. all scores 0, instead of leaving it on the axis's edge."""
    values = _finite_values(groups, threshold)
    if values.size == 0 or np.ptp(values) > 0:
        return
    value = float(values[0])
    if scale == "log":
        axes.set_xlim(value / 10, value * 10)
    else:
        half = max(abs(value), 1.0) / 2
        axes.set_xlim(value - half, value + half)


def plot_densities(
    path: str | Path,
    groups: Mapping[str, np.ndarray],
    *,
    xlabel: str,
    threshold: float | None = None,
    log_x: bool = False,
    title: str | None = None,
) -> Path:
    """Kernel density of one quantity per group (e.g. score of real rare vs synthetic).

    Args:
        path: PNG file to write.
        groups: label -> values; empty groups are skipped.
        xlabel: what the values are.
        threshold: draw a vertical line here (e.g. the pass threshold).
        log_x: the values span orders of magnitude: a log axis, or a symlog one (linear near
            0) when some are zero or negative or far below the rest (see
            :func:`_density_scale`). Densities are estimated in the axis's coordinates.
        title: figure title.

    Returns:
        ``path``.
    """
    from scipy.stats import gaussian_kde

    figure = _figure(6.5, 4.0)
    axes = figure.add_subplot()
    scale, linthresh = _density_scale(groups, log_x, threshold)
    forward = _axis_transform(scale, linthresh)
    inverse = forward.inverted()
    for (label, values), colour in zip(groups.items(), _DENSITY_COLOURS * 4, strict=False):
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        shown = forward.transform_non_affine(values.reshape(-1, 1)).ravel()
        if values.size < 3 or np.ptp(shown) == 0:
            axes.axvline(values.mean(), color=colour, label=f"{label} ({values.size})")
            continue
        pad = 0.05 * np.ptp(shown)
        grid = np.linspace(shown.min() - pad, shown.max() + pad, 256)
        density = gaussian_kde(shown)(grid)
        x = inverse.transform_non_affine(grid.reshape(-1, 1)).ravel()
        axes.plot(x, density, color=colour, label=f"{label} ({values.size})")
        axes.fill_between(x, density, color=colour, alpha=0.15)
    if scale == "symlog":
        axes.set_xscale("symlog", linthresh=linthresh)
    elif scale == "log":
        axes.set_xscale("log")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", label="pass threshold")
    _widen_single_value(axes, groups, threshold, scale)
    axes.set_xlabel(xlabel + (f" (linear below {linthresh:.3g})" if scale == "symlog" else ""))
    axes.set_ylabel("density (in the axis's scale)" if scale != "linear" else "density")
    if title:
        axes.set_title(title)
    axes.legend(loc="best", fontsize=8)
    return _save(figure, path)


def plot_sample_grid(
    path: str | Path,
    rows: Mapping[str, list[tuple[np.ndarray, str]]],
    *,
    title: str | None = None,
) -> Path:
    """A grid of sample images: one row per group (e.g. best passing, borderline, rejected by
    reason), each image with a short caption (e.g. its generator, reason and score).

    Args:
        path: PNG file to write.
        rows: row label -> ``(uint8 (H, W, C) image, caption)`` pairs; empty rows are skipped.
        title: figure title.

    Returns:
        ``path``.
    """
    rows = {label: items for label, items in rows.items() if items}
    columns = max((len(items) for items in rows.values()), default=1)
    figure = _figure(1.3 * columns + 1.6, 1.5 * max(len(rows), 1) + 0.4)
    grid = figure.subplots(max(len(rows), 1), columns, squeeze=False)
    for axes in grid.ravel():
        axes.set_axis_off()
    for r, (label, items) in enumerate(rows.items()):
        grid[r, 0].text(
            -0.15, 0.5, label, transform=grid[r, 0].transAxes, ha="right", va="center", fontsize=7
        )
        for c, (image, caption) in enumerate(items):
            image = np.asarray(image)
            shown = image[..., 0] if image.shape[-1] == 1 else image
            grid[r, c].imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255)
            grid[r, c].set_title(caption, fontsize=6)
    if title:
        figure.suptitle(title, fontsize=9)
    return _save(figure, path)


def grid_rows(
    images: list[np.ndarray],
    scores: np.ndarray,
    passed: np.ndarray,
    reasons: np.ndarray,
    generators: Sequence[str] | None = None,
) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Rows of the sample grid: the best passing, the borderline ones on each side of the
    threshold, and the lowest-scored rejected samples of each reason (8 per row), each
    captioned with its generator (when ``generators`` is given), its reason (``pass`` or why
    it was rejected) and its score."""
    per_row = 8
    order = np.argsort(-scores, kind="stable")
    passing = [i for i in order if passed[i]]
    rejected = [i for i in order if not passed[i]]
    rows = {
        "best passing": passing[:per_row],
        "last passing": passing[-per_row:][::-1] if len(passing) > per_row else [],
        "first rejected": rejected[:per_row],
    }
    for reason in sorted({str(reasons[i]) for i in rejected}):
        mine = [i for i in rejected if reasons[i] == reason]
        rows[f"rejected: {reason}"] = mine[-per_row:][::-1]
    made_by = [f"{g}\n" for g in generators] if generators is not None else [""] * len(scores)
    return {
        label: [(images[i], f"{made_by[i]}{reasons[i]} {scores[i]:.3g}") for i in chosen]
        for label, chosen in rows.items()
    }


def plot_filter(
    folder: Path,
    flt: EmbeddingFilter,
    output: FilterOutput,
    plane: tuple[np.ndarray, np.ndarray],
    *,
    real_rare: np.ndarray,
    passed: np.ndarray,
    level: float,
    reasons: np.ndarray,
    images: list[np.ndarray],
    title: str,
    generators: Sequence[str] | None = None,
) -> list[str]:
    """Write ``umap.png`` (the plane, rejected samples coloured by reason, with the filter's
    ellipses where it has them, :func:`plane_ellipses`), ``density.png`` (what the threshold
    cuts, :func:`diagnostic`) and ``grid.png`` into ``folder``.

    Args:
        folder: where the PNGs go.
        flt: the fitted filter; output: its evaluation of the synthetic samples.
        plane: 2-D points of the real fit samples and of the synthetic samples
            (:func:`plane_points`).
        real_rare: rare-class mask of the real samples.
        passed: pass mask of the synthetic samples; level: the level they were decided at.
        reasons: why each synthetic sample passed or not.
        images: the synthetic images, for the grid.
        title: the grid's title.
        generators: the generator (lineage run) of each synthetic sample, shown in the grid.

    Returns:
        The paths written.
    """
    ellipses = plane_ellipses(flt)
    umap_png = plot_umap_ellipses(
        folder / "umap.png",
        real_points=plane[0],
        real_rare=real_rare,
        synthetic_points=plane[1],
        synthetic_pass=passed,
        means=ellipses.means if ellipses else np.empty((0, 2)),
        covariances=ellipses.covariances if ellipses else np.empty((0, 2, 2)),
        chosen=ellipses.chosen if ellipses else -1,
        level=level,
        weights=ellipses.weights if ellipses else None,
        title=f"{type(flt).__name__} at level {level:.3f}",
        synthetic_reasons=reasons,
    )
    cut = diagnostic(flt, output, level)
    values = cut.values
    groups = {"synthetic, pass": values[passed], "synthetic, reject": values[~passed]}
    if cut.real is not None:
        groups = {
            "real, rare class": cut.real[real_rare],
            **groups,
            "real, other classes": cut.real[~real_rare],
        }
    density_png = plot_densities(
        folder / "density.png",
        groups,
        xlabel=cut.label,
        threshold=cut.threshold,
        log_x=cut.log_scale,
    )
    grid_png = plot_sample_grid(
        folder / "grid.png",
        grid_rows(images, output.scores, passed, reasons, generators),
        title=title,
    )
    return [str(umap_png), str(density_png), str(grid_png)]
