"""Filter runs on a dataset: config -> run -> results under a key.

:func:`run_filter` fits a filter (:mod:`brain.filters`) on the real train split's embeddings of
an embed run, scores every synthetic sample and stores, under the key ``K``:

- the float field ``K_score`` on synthetic samples (higher = more like the real rare class);
- the tags ``K:pass`` / ``K:reject`` on synthetic samples (a rerun replaces them; manual decisions
  win, see :mod:`curation.tags`); real samples are never tagged;
- the saved views ``real-train``, ``K-pass`` and ``K-reject``;
- a visualization brain run ``K_umap`` with the UMAP points of the real train and synthetic
  samples (the App's Embeddings panel, coloured by ``origin``, ``ground_truth`` or ``K_score``);
- PNG plots under ``<media>/filters/K/``;
- the run record ``filter_K`` (method, parameters, seeds, embed run and field, level, counts,
  calibration sweep), so several runs coexist and can be compared (``curate info``).

Everything is read, fitted, scored (and calibrated) before the first write: bad input leaves
the dataset unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np

from brain.embeddings import latest_embed_run
from brain.filter_calibration import CalibrationSettings, calibrate_level
from brain.filters import EmbeddingFilter, make_filter
from brain.filters.base import as_float_matrix
from brain.filters.ellipse import EllipseFilter
from brain.runs import list_runs, load_run, run_key, store_run
from curation.datasets import builtin_views, labelled, media_dir, open_dataset, save_view
from curation.errors import CurateError
from curation.schema import LABEL_FIELD, rare_class
from curation.tags import apply_filter_decisions, pass_tag, reject_tag

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,59}$")
TRAIN_VIEW = "real-train"


@dataclass
class FilterInputs:
    """What a filter run reads from the dataset."""

    embed_run: str
    field: str
    classifier_run: str | None
    real_ids: list[str]
    real: np.ndarray
    rare: np.ndarray
    synthetic_ids: list[str]
    synthetic: np.ndarray


def check_key(key: str) -> str:
    """A filter key: a letter, then letters, digits or ``_`` (it names fields and tags)."""
    if not _KEY.match(key or ""):
        raise CurateError(
            f"invalid filter key {key!r}: start with a letter, then letters, digits or '_'"
        )
    return key


def score_field(key: str) -> str:
    """The float field holding the scores of filter run ``key``."""
    return f"{key}_score"


def visualization_key(key: str) -> str:
    """The brain key of filter run ``key``'s UMAP points."""
    return f"{key}_umap"


def _read_vectors(view: fo.DatasetView, field: str, what: str, dim: int | None):
    ids, vectors = view.values(["id", field])
    missing = sum(v is None for v in vectors)
    if missing:
        raise CurateError(
            f"{missing} of {len(ids)} {what} have no embedding in {field!r}; embed them first "
            "(`curate embed`)"
        )
    lengths = {len(v) for v in vectors}
    if len(lengths) > 1 or (dim is not None and lengths != {dim}):
        raise CurateError(
            f"{what} have embeddings of lengths {sorted(lengths)} in {field!r} where the embed "
            f"run made {dim}: embeddings from different runs mixed; re-run `curate embed`"
        )
    return list(ids), as_float_matrix(np.asarray(vectors, dtype=np.float64), name=f"{what}")


def read_inputs(dataset: fo.Dataset, embed: str | None = None) -> FilterInputs:
    """Read and check the embeddings a filter run needs.

    Raises:
        CurateError: no embed run, no rare class, no synthetic samples, missing or mixed
            embeddings.
    """
    rare_label = rare_class(dataset)
    if rare_label is None:
        raise CurateError(f"dataset {dataset.name!r} records no rare class")
    embed = embed or latest_embed_run(dataset)
    config, results = load_run(dataset, "embed", embed)
    field, dim = config["field"], results.get("dim")
    if not dataset.has_sample_field(field):
        raise CurateError(f"the embedding field {field!r} of embed run {embed!r} is missing")
    views = builtin_views(dataset)
    real_view = labelled(views[TRAIN_VIEW])
    if len(views["synthetic"]) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no synthetic samples to filter")
    if len(real_view) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no labelled real train samples")
    real_ids, real = _read_vectors(real_view, field, "real train samples", dim)
    synthetic_ids, synthetic = _read_vectors(views["synthetic"], field, "synthetic samples", dim)
    labels = real_view.values(f"{LABEL_FIELD}.label")
    return FilterInputs(
        embed_run=embed,
        field=field,
        classifier_run=config.get("train_run"),
        real_ids=real_ids,
        real=real,
        rare=np.array([label == rare_label for label in labels], dtype=bool),
        synthetic_ids=synthetic_ids,
        synthetic=synthetic,
    )


def _probabilities(dataset_name: str, run: str | None, view: str, ids: list[str]) -> np.ndarray:
    from brain.classifier import predict_proba

    if run is None:
        raise CurateError("the embed run names no classifier run for the confidence filter")
    got_ids, proba = predict_proba(dataset_name, run, view)
    lookup = dict(zip(got_ids, proba, strict=True))
    return np.array([lookup[i] for i in ids], dtype=np.float64)


def _plane(flt: EmbeddingFilter, inputs: FilterInputs, synthetic_points, seed: int | None):
    """UMAP points of the real train and synthetic samples (reusing the filter's plane)."""
    from brain.filters.umap_gmm import UmapGmmFilter

    if isinstance(flt, UmapGmmFilter):
        return flt.embedding_, synthetic_points
    from brain.filters.fastumap import FastUMAP
    from brain.filters.reduce import apply_pca, fit_pca

    pca = fit_pca(inputs.real, 50)
    plane = FastUMAP(n_epochs=100, random_state=seed).fit(apply_pca(pca, inputs.real))
    return plane.embedding_, plane.transform(apply_pca(pca, inputs.synthetic))


def _score(flt: EmbeddingFilter, inputs: FilterInputs, dataset_name: str):
    """Fit ``flt``; return the synthetic scores and, for ellipse filters, the synthetic samples'
    coordinates in the filter's own space (else ``None``)."""
    if flt.input_kind == "probability":
        real_p = _probabilities(dataset_name, inputs.classifier_run, TRAIN_VIEW, inputs.real_ids)
        synthetic_p = _probabilities(
            dataset_name, inputs.classifier_run, "synthetic", inputs.synthetic_ids
        )
        flt.fit(real_p, inputs.rare)
        return flt.score(synthetic_p), None
    flt.fit(inputs.real, inputs.rare)
    if isinstance(flt, EllipseFilter):
        points = flt.transform(inputs.synthetic)
        return flt.score_transformed(points), points
    return flt.score(inputs.synthetic), None


def _plots(
    folder: Path,
    flt: EmbeddingFilter,
    inputs: FilterInputs,
    plane: tuple[np.ndarray, np.ndarray],
    filter_points: np.ndarray | None,
    scores: np.ndarray,
    passed: np.ndarray,
    level: float,
) -> list[str]:
    """``umap.png`` (the plane; with the mixture ellipses for ``umap_gmm``) and
    ``density.png`` (squared Mahalanobis distances for ellipse filters, else scores)."""
    from brain.filters.maths import chi2_radius_sq
    from brain.filters.plots import plot_densities, plot_umap_ellipses
    from brain.filters.umap_gmm import UmapGmmFilter

    ellipses = isinstance(flt, UmapGmmFilter)
    umap_png = plot_umap_ellipses(
        folder / "umap.png",
        real_points=plane[0],
        real_rare=inputs.rare,
        synthetic_points=plane[1],
        synthetic_pass=passed,
        means=flt.mixture_.means_ if ellipses else np.empty((0, 2)),
        covariances=flt.covariances_ if ellipses else np.empty((0, 2, 2)),
        chosen=flt.component_ if ellipses else -1,
        level=level,
        weights=flt.mixture_.weights_ if ellipses else None,
        title=f"{type(flt).__name__} at level {level:.3f}",
    )
    if isinstance(flt, EllipseFilter) and filter_points is not None:
        synthetic_d2 = flt.distance_sq_transformed(filter_points)
        real_d2 = flt.distance_sq_transformed(flt.fit_points_)
        groups = {
            "real, rare class": real_d2[inputs.rare],
            "synthetic, pass": synthetic_d2[passed],
            "synthetic, reject": synthetic_d2[~passed],
            "real, other classes": real_d2[~inputs.rare],
        }
        density_png = plot_densities(
            folder / "density.png",
            groups,
            xlabel="squared Mahalanobis distance to the filter component",
            threshold=chi2_radius_sq(level, flt.dof_),
            log_x=True,
        )
    else:
        density_png = plot_densities(
            folder / "density.png",
            {"synthetic, pass": scores[passed], "synthetic, reject": scores[~passed]},
            xlabel="score",
            threshold=flt.threshold(level),
            log_x=flt.input_kind == "embedding",
        )
    return [str(umap_png), str(density_png)]


def _store_visualization(dataset, key, inputs, real_points, synthetic_points) -> str:
    import fiftyone.brain as fob

    brain_key = visualization_key(key)
    if brain_key in dataset.list_brain_runs():
        dataset.delete_brain_run(brain_key)
    ids = inputs.real_ids + inputs.synthetic_ids
    points = np.vstack([real_points, synthetic_points]).astype(np.float64)
    fob.compute_visualization(
        dataset.select(ids, ordered=True),
        points=points,
        brain_key=brain_key,
        method="manual",
        progress=False,
    )
    return brain_key


def run_filter(
    dataset_name: str,
    method: str,
    key: str,
    *,
    embed: str | None = None,
    level: float | None = None,
    calibrate: bool = False,
    calibration: CalibrationSettings | None = None,
    params: dict[str, Any] | None = None,
    visualize: bool = True,
    plots: bool = True,
) -> dict[str, Any]:
    """Filter the synthetic samples of a dataset and store the run under ``key``.

    Args:
        dataset_name: the project dataset.
        method: a filter name (``umap_gmm``, ``gmm_full``, ``knn_precision``, ``confidence``).
        key: the run key ``K`` (letters, digits, ``_``): names the score field ``K_score``, the
            tags ``K:pass`` / ``K:reject``, the views ``K-pass`` / ``K-reject`` and the run
            record; rerunning a key replaces all of them.
        embed: the embed run whose embeddings are used (default: the latest); its train run is
            the classifier of the ``confidence`` filter.
        level: the pass level (meaning per filter, see ``brain.filters``); default: the filter's
            own default (``umap_gmm``: the heaviest component's weight).
        calibrate: choose the level by retraining the classifier on real train + passing
            synthetic samples and keeping the best validation F1 of the rare class.
        calibration: settings of that sweep (levels, seeds, epochs, ...).
        params: filter parameters (e.g. ``{"random_state": 1, "gmm_components": 3}``).
        visualize: store the UMAP points as the visualization brain run ``K_umap``.
        plots: write ``umap.png`` and ``density.png`` under ``<media>/filters/K/``.

    Returns:
        ``n_synthetic``, ``n_pass``, ``n_reject``, ``n_overridden``, ``level``,
        ``default_level``, ``threshold``, ``method``, ``key``, ``score_field``, ``tags``,
        ``views``, ``brain_key``, ``plots``, ``embed_run``, ``field`` and ``calibration``.

    Raises:
        CurateError: for bad input (unknown method or parameter, bad key or level, missing or
            mixed embeddings, no synthetic samples, too few real rare samples, degenerate
            data); the dataset is unchanged then.
    """
    check_key(key)
    run_key("filter", key)
    if calibrate and level is not None:
        raise CurateError("give either a level or --calibrate, not both")
    flt = make_filter(method, **(params or {}))
    dataset = open_dataset(dataset_name)
    field = score_field(key)
    if dataset.has_sample_field(field) and key not in list_runs(dataset, "filter"):
        raise CurateError(f"field {field!r} exists and is not a filter score; choose another key")
    inputs = read_inputs(dataset, embed)

    scores, filter_points = _score(flt, inputs, dataset_name)
    calibration_report = None
    if calibrate:
        settings = calibration or CalibrationSettings()
        calibration_report = calibrate_level(dataset, flt, inputs.synthetic_ids, scores, settings)
        level = calibration_report["level"]
    chosen = flt.resolve_level(level)
    passed = flt.decide_scores(scores, chosen)
    seed = flt.get_params().get("random_state")
    plane = _plane(flt, inputs, filter_points, seed) if visualize or plots else None

    # -- writes ----------------------------------------------------------------------------------
    dataset.set_values(
        field, dict(zip(inputs.synthetic_ids, scores.tolist(), strict=True)), key_field="id"
    )
    counts = apply_filter_decisions(
        dataset, key, dict(zip(inputs.synthetic_ids, passed.tolist(), strict=True))
    )
    views = {
        TRAIN_VIEW: builtin_views(dataset)[TRAIN_VIEW],
        f"{key}-pass": dataset.match_tags(pass_tag(key)),
        f"{key}-reject": dataset.match_tags(reject_tag(key)),
    }
    for name, view in views.items():
        save_view(dataset, name, view)
    brain_key = None
    if visualize:
        brain_key = _store_visualization(dataset, key, inputs, *plane)
    plot_paths = []
    if plots:
        folder = media_dir(dataset, "filters", key)
        plot_paths = _plots(folder, flt, inputs, plane, filter_points, scores, passed, chosen)
    results = {
        "key": key,
        "method": method,
        "n_synthetic": len(inputs.synthetic_ids),
        **counts,
        "level": chosen,
        "default_level": float(flt.default_level_),
        "threshold": float(flt.threshold(chosen)),
        "score_field": field,
        "tags": [pass_tag(key), reject_tag(key)],
        "views": list(views),
        "brain_key": brain_key,
        "plots": plot_paths,
        "embed_run": inputs.embed_run,
        "field": inputs.field,
        "n_real": len(inputs.real_ids),
        "n_real_rare": int(inputs.rare.sum()),
        "calibration": calibration_report,
    }
    config = {
        "method": method,
        "params": _jsonable(flt.get_params()),
        "seed": seed,
        "embed_run": inputs.embed_run,
        "field": inputs.field,
        "classifier_run": inputs.classifier_run if flt.input_kind == "probability" else None,
        "level": level if not calibrate else None,
        "calibrate": calibrate,
    }
    store_run(dataset, "filter", key, config, results)
    return results


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
