"""Filter runs on a dataset: config -> run -> results under a key.

:func:`run_filter` fits a filter (:mod:`brain.filters`) on the real train split's embeddings of
an embed run, scores every synthetic sample and stores, under the key ``K``:

- the float field ``K_score`` on synthetic samples (higher = more like the real rare class),
  the string field ``K_reason`` (``pass``, or why the sample was rejected: ``unrealistic``,
  ``other-class``, ``near-copy``, ``outside-ellipse``, ... or ``manual-pass`` /
  ``manual-reject`` where a person decided) and, for filters made of parts, one float field per
  part (``K_realism``, ``K_rare_prob``, ``K_copy_ratio`` for ``combined``);
- the tags ``K:pass`` / ``K:reject`` on synthetic samples (a rerun replaces them; manual decisions
  win, see :mod:`curation.tags`); real samples are never tagged;
- the saved views ``real-train``, ``K-pass`` and ``K-reject``;
- a visualization brain run ``K_umap`` with the UMAP points of the real train and synthetic
  samples (the App's Embeddings panel, coloured by ``origin``, ``ground_truth`` or ``K_score``);
- PNG plots under ``<media>/filters/K/``;
- the run record ``filter_K`` (method, parameters, seeds, embed run and field, level, counts,
  reasons, calibration, a fidelity scorecard per generator, warnings), so several runs coexist
  and can be compared (``curate info``).

Everything is read, fitted, scored (and calibrated) before the first write: bad input leaves
the dataset unchanged.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np

from brain.embeddings import latest_embed_run
from brain.filter_calibration import (
    CALIBRATIONS,
    CalibrationSettings,
    calibrate_level,
    calibrate_pass_rate,
)
from brain.filters import EmbeddingFilter, make_filter
from brain.filters.base import as_float_matrix
from brain.filters.ellipse import EllipseFilter
from brain.filters.scorecard import fidelity_scorecard
from brain.metrics import FEW_RARE
from brain.runs import has_run, list_runs, load_run, run_key, store_run
from curation.datasets import builtin_views, labelled, media_dir, open_dataset, save_view
from curation.errors import CurateError
from curation.schema import LABEL_FIELD, LINEAGE_FIELD, rare_class
from curation.tags import MANUAL_FIELD, apply_filter_decisions, pass_tag, reject_tag

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
    generators: list[str]
    fine: np.ndarray | None = None
    fine_field: str | None = None
    real_stats: np.ndarray | None = None
    synthetic_stats: np.ndarray | None = None


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
    runs = views["synthetic"].values(f"{LINEAGE_FIELD}.run")
    fine_field = _fine_field(dataset, config.get("train_run"))
    fine = None
    if fine_field is not None:
        fine = np.array(real_view.values(f"{fine_field}.label"), dtype=object)
    return FilterInputs(
        embed_run=embed,
        field=field,
        classifier_run=config.get("train_run"),
        real_ids=real_ids,
        real=real,
        rare=np.array([label == rare_label for label in labels], dtype=bool),
        synthetic_ids=synthetic_ids,
        synthetic=synthetic,
        generators=[run or "(no lineage)" for run in runs],
        fine=fine,
        fine_field=fine_field,
    )


def _fine_field(dataset: fo.Dataset, train_run: str | None) -> str | None:
    """The fine-label field the embed run's classifier was trained on, if not the task labels."""
    if train_run is None or not has_run(dataset, "train", train_run):
        return None
    config, _ = load_run(dataset, "train", train_run)
    field = config.get("label_field") or LABEL_FIELD
    return None if field == LABEL_FIELD else field


def read_val(dataset: fo.Dataset, inputs: FilterInputs) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids, embeddings and rare mask of the labelled real val samples (for calibration).

    Raises:
        CurateError: no labelled val sample, or val samples without embeddings.
    """
    view = labelled(builtin_views(dataset)["real-val"])
    if len(view) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no labelled real val samples")
    ids, vectors = _read_vectors(view, inputs.field, "real val samples", inputs.real.shape[1])
    labels = view.values(f"{LABEL_FIELD}.label")
    rare_label = rare_class(dataset)
    return ids, vectors, np.array([label == rare_label for label in labels], dtype=bool)


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
    flt.fit(inputs.real, inputs.rare, fine_labels=inputs.fine, image_features=inputs.real_stats)
    if isinstance(flt, EllipseFilter):
        points = flt.transform(inputs.synthetic)
        return flt.score_transformed(points), points
    return flt.score(inputs.synthetic, image_features=inputs.synthetic_stats), None


def _fitted_images(dataset: fo.Dataset, arrays: list[np.ndarray]) -> np.ndarray:
    """``arrays`` as one ``uint8`` ``(N, H, W, C)`` array under the dataset's size policy."""
    from brain.data import stack_images
    from curation.schema import size_policy

    size, pad = size_policy(dataset)
    return stack_images(arrays, size, pad).permute(0, 2, 3, 1).numpy()


def _image_stats(dataset: fo.Dataset, ids: list[str]) -> np.ndarray:
    """Image statistics (:mod:`brain.filters.image_stats`) of the samples ``ids``."""
    from brain.data import decode_view
    from brain.filters.image_stats import image_statistics

    arrays = decode_view(dataset.select(ids, ordered=True), progress=False).arrays
    return image_statistics(_fitted_images(dataset, arrays))


def _plots(
    folder: Path,
    flt: EmbeddingFilter,
    inputs: FilterInputs,
    plane: tuple[np.ndarray, np.ndarray],
    filter_points: np.ndarray | None,
    scores: np.ndarray,
    passed: np.ndarray,
    level: float,
    reasons: np.ndarray,
) -> list[str]:
    """``umap.png`` (the plane, rejected samples coloured by reason; with the mixture ellipses
    for ``umap_gmm``) and ``density.png`` (squared Mahalanobis distances for ellipse filters,
    else scores)."""
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
        synthetic_reasons=reasons,
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


def _calibration_mode(calibrate: bool | str) -> str | None:
    """``None``, ``"val"`` or ``"retrain"`` (``True`` means ``"retrain"``, the older flag)."""
    if calibrate is False or calibrate is None:
        return None
    if calibrate is True:
        return "retrain"
    if calibrate not in CALIBRATIONS:
        raise CurateError(f"unknown calibration {calibrate!r}; known: {', '.join(CALIBRATIONS)}")
    return calibrate


def reason_field(key: str) -> str:
    """The string field holding why each synthetic sample passed or not under run ``key``."""
    return f"{key}_reason"


def part_field(key: str, part: str) -> str:
    """The float field holding part ``part`` (e.g. ``realism``) of run ``key``'s score."""
    return f"{key}_{part}"


def _val_scores(flt: EmbeddingFilter, dataset: fo.Dataset, inputs: FilterInputs, name: str):
    """Scores and rare mask of the real val samples under the fitted ``flt``."""
    ids, vectors, val_rare = read_val(dataset, inputs)
    if flt.input_kind == "probability":
        return flt.score(_probabilities(name, inputs.classifier_run, "real-val", ids)), val_rare
    stats = _image_stats(dataset, ids) if inputs.real_stats is not None else None
    return flt.score(vectors, image_features=stats), val_rare


def _scorecards(inputs: FilterInputs, passed: np.ndarray) -> tuple[dict[str, Any], list[str]]:
    """Fidelity scorecard of every generator run's samples (all, and passing) against the
    real rare train class, in the embedding space; and warnings."""
    reference = inputs.real[inputs.rare]
    k = min(5, len(reference) - 1)
    if k < 1:
        return {}, ["no scorecard: fewer than 2 real rare train samples"]
    warnings = []
    if k < 5:
        warnings.append(f"scorecard with k = {k} (only {len(reference)} real rare train samples)")
    generators = np.array(inputs.generators, dtype=object)
    cards: dict[str, Any] = {}
    for generator in sorted(set(inputs.generators)):
        mine = generators == generator
        cards[generator] = {"all": fidelity_scorecard(reference, inputs.synthetic[mine], k=k)}
        if (mine & passed).any():
            cards[generator]["pass"] = fidelity_scorecard(
                reference, inputs.synthetic[mine & passed], k=k
            )
    return cards, warnings


def _manual_reasons(dataset: fo.Dataset, ids: list[str], reasons: np.ndarray) -> np.ndarray:
    """``reasons`` with ``manual-pass`` / ``manual-reject`` where a person decided."""
    if MANUAL_FIELD not in dataset.get_field_schema():
        return reasons
    decisions = dict(zip(*dataset.select(ids).values(["id", MANUAL_FIELD]), strict=True))
    manual = np.array([decisions.get(i) for i in ids], dtype=object)
    return np.where(manual != None, "manual-" + manual.astype(str), reasons)  # noqa: E711


DUPLICATE_TAG = "duplicate"
DUPLICATE_FIELD = "duplicate_of"


def _synthetic_images(dataset: fo.Dataset, inputs: FilterInputs) -> list[np.ndarray]:
    """The decoded synthetic images, in the order of ``inputs.synthetic_ids``."""
    from brain.data import decode_view

    view = dataset.select(inputs.synthetic_ids, ordered=True)
    return decode_view(view, progress=False, desc="synthetic").arrays


def _duplicates(dataset: fo.Dataset, inputs: FilterInputs, images: list[np.ndarray]):
    """For each synthetic sample, the position of the earlier one it duplicates, or -1 (exact
    pixel copies always; near copies by embedding + SSIM when the images share a size or the
    dataset has a size policy)."""
    from brain.duplicates import find_duplicates
    from curation.schema import size_policy

    fitted = None
    if size_policy(dataset)[0] is not None or len({a.shape for a in images}) == 1:
        fitted = _fitted_images(dataset, images)
        if min(fitted.shape[1:3]) < 7:  # too small for the SSIM window
            fitted = None
    return find_duplicates(images, inputs.synthetic, inputs.real, fitted=fitted)


def _grid_rows(
    images: list[np.ndarray], scores: np.ndarray, passed: np.ndarray, reasons: np.ndarray
) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Rows of the sample grid: the best passing, the borderline ones on each side of the
    threshold, and the lowest-scored rejected samples of each reason (8 per row)."""
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
    return {
        label: [(images[i], f"{scores[i]:.3g}") for i in chosen] for label, chosen in rows.items()
    }


def _tag_duplicates(dataset: fo.Dataset, ids: list[str], duplicate_of: np.ndarray) -> None:
    """Tag ``duplicate`` (and set ``duplicate_of``) on the synthetic samples that repeat an
    earlier one; a rerun replaces the tags."""
    dataset.untag_samples(DUPLICATE_TAG)
    if not dataset.has_sample_field(DUPLICATE_FIELD):
        dataset.add_sample_field(DUPLICATE_FIELD, fo.StringField)
    keeper = [ids[k] if k >= 0 else None for k in duplicate_of]
    dataset.set_values(DUPLICATE_FIELD, dict(zip(ids, keeper, strict=True)), key_field="id")
    repeated = [i for i, k in zip(ids, keeper, strict=True) if k is not None]
    if repeated:
        dataset.select(repeated).tag_samples(DUPLICATE_TAG)


def _write_fields(dataset: fo.Dataset, ids: list[str], values: dict[str, np.ndarray]) -> list[str]:
    """Store ``values`` (field -> one value per id) on the samples ``ids``; returns the fields."""
    for field, column in values.items():
        dataset.set_values(field, dict(zip(ids, column.tolist(), strict=True)), key_field="id")
    return list(values)


def _stale_part_fields(dataset: fo.Dataset, key: str, keep: list[str]) -> None:
    """Delete part fields of an older run of ``key`` that this run does not write."""
    if not has_run(dataset, "filter", key):
        return
    _, old = load_run(dataset, "filter", key)
    for field in old.get("fields", []):
        if field not in keep and dataset.has_sample_field(field):
            dataset.delete_sample_field(field)


def run_filter(
    dataset_name: str,
    method: str,
    key: str,
    *,
    embed: str | None = None,
    level: float | None = None,
    calibrate: bool | str = False,
    target: float = 0.95,
    calibration: CalibrationSettings | None = None,
    params: dict[str, Any] | None = None,
    visualize: bool = True,
    plots: bool = True,
    dedupe: bool = True,
) -> dict[str, Any]:
    """Filter the synthetic samples of a dataset and store the run under ``key``.

    Args:
        dataset_name: the project dataset.
        method: a filter name (see ``brain.filters``; ``combined`` is recommended,
            ``umap_gmm`` is the study's reference).
        key: the run key ``K`` (letters, digits, ``_``): names the fields ``K_score`` and
            ``K_reason``, the tags ``K:pass`` / ``K:reject``, the views ``K-pass`` /
            ``K-reject`` and the run record; rerunning a key replaces all of them.
        embed: the embed run whose embeddings are used (default: the latest); its train run is
            the classifier of the ``confidence`` filter, and its label field (fine labels, if it
            was trained on them) is passed to filters that model subgroups.
        level: the pass level (meaning per filter, see ``brain.filters``); default: the filter's
            own default (``umap_gmm``: the heaviest component's weight).
        calibrate: ``"val"``: choose the level at which ``target`` of the real rare val samples
            pass (no training); ``"retrain"`` (or ``True``): retrain the classifier on real
            train + passing synthetic samples per level and keep the best validation F1.
        target: the share of real rare val samples that must pass with ``calibrate="val"``.
        calibration: settings of the retraining sweep (levels, seeds, epochs, ...).
        params: filter parameters (e.g. ``{"random_state": 1, "gmm_components": 3}``).
        visualize: store the UMAP points as the visualization brain run ``K_umap``.
        plots: write ``umap.png``, ``density.png`` and ``grid.png`` under
            ``<media>/filters/K/``.
        dedupe: find exact and near duplicates among the synthetic samples (pixel hash;
            embedding distance confirmed by SSIM), tag them ``duplicate`` with
            ``duplicate_of`` pointing to the first copy, and reject all but the first (reason
            ``duplicate``), so an export holds each image once.

    Returns:
        ``n_synthetic``, ``n_pass``, ``n_reject``, ``n_overridden``, ``reasons`` (counts),
        ``level``, ``default_level``, ``threshold``, ``method``, ``key``, ``score_field``,
        ``reason_field``, ``fields``, ``tags``, ``views``, ``brain_key``, ``plots``,
        ``embed_run``, ``field``, ``fine_field``, ``calibration``, ``scorecard`` (per generator
        run: precision, recall, density, coverage, authenticity of all and of passing samples)
        and ``warnings``.

    Raises:
        CurateError: for bad input (unknown method or parameter, bad key, level or target,
            missing or mixed embeddings, no synthetic samples, too few real rare samples,
            degenerate data); the dataset is unchanged then.
    """
    check_key(key)
    run_key("filter", key)
    mode = _calibration_mode(calibrate)
    if mode and level is not None:
        raise CurateError("give either a level or a calibration, not both")
    if mode == "val" and not 0.0 < float(target) < 1.0:
        raise CurateError(f"the calibration target must lie strictly between 0 and 1, got {target}")
    flt = make_filter(method, **(params or {}))
    if level is not None:
        flt.check_level(level)
    dataset = open_dataset(dataset_name)
    field = score_field(key)
    if dataset.has_sample_field(field) and key not in list_runs(dataset, "filter"):
        raise CurateError(f"field {field!r} exists and is not a filter score; choose another key")
    inputs = read_inputs(dataset, embed)
    needs_images = dedupe or plots or flt.uses_image_features
    images = _synthetic_images(dataset, inputs) if needs_images else []
    if flt.uses_image_features:
        from brain.filters.image_stats import image_statistics

        inputs.real_stats = _image_stats(dataset, inputs.real_ids)
        inputs.synthetic_stats = image_statistics(_fitted_images(dataset, images))

    scores, filter_points = _score(flt, inputs, dataset_name)
    parts = {}
    if flt.input_kind == "embedding":
        parts = flt.parts(inputs.synthetic, image_features=inputs.synthetic_stats)
    warnings = list(getattr(flt, "notes_", []))
    if int(inputs.rare.sum()) < FEW_RARE:
        warnings.append(
            f"the filter was fitted on {int(inputs.rare.sum())} real rare train samples "
            f"(fewer than {FEW_RARE}): its decisions are rough"
        )
    calibration_report = None
    if mode == "val":
        val_scores, val_rare = _val_scores(flt, dataset, inputs, dataset_name)
        calibration_report = calibrate_pass_rate(flt, val_scores, val_rare, target=target)
        warnings += calibration_report["warnings"]
        level = calibration_report["level"]
    elif mode == "retrain":
        settings = calibration or CalibrationSettings()
        calibration_report = calibrate_level(dataset, flt, inputs.synthetic_ids, scores, settings)
        level = calibration_report["level"]
    chosen = flt.resolve_level(level)
    passed = flt.decide_scores(scores, chosen)
    reasons = flt.reasons(scores, parts, chosen)
    duplicate_of = _duplicates(dataset, inputs, images) if dedupe else np.full(len(scores), -1)
    passed &= duplicate_of < 0
    reasons = np.where(duplicate_of >= 0, DUPLICATE_TAG, reasons).astype(object)
    scorecard, card_warnings = _scorecards(inputs, passed)
    warnings += card_warnings
    seed = flt.get_params().get("random_state")
    plane = _plane(flt, inputs, filter_points, seed) if visualize or plots else None

    # -- writes ----------------------------------------------------------------------------------
    values = {field: scores, **{part_field(key, p): v for p, v in parts.items()}}
    _stale_part_fields(dataset, key, [*values, reason_field(key)])
    config = {
        "method": method,
        "params": _jsonable(flt.get_params()),
        "seed": seed,
        "embed_run": inputs.embed_run,
        "field": inputs.field,
        "classifier_run": inputs.classifier_run if flt.input_kind == "probability" else None,
        "level": level if not mode else None,
        "calibrate": mode,
        "target": float(target) if mode == "val" else None,
    }
    # the record comes first, so a run killed while writing is still known as a filter run
    store_run(dataset, "filter", key, config, {"status": "writing"})
    fields = _write_fields(dataset, inputs.synthetic_ids, values)
    if dedupe:
        _tag_duplicates(dataset, inputs.synthetic_ids, duplicate_of)
    counts = apply_filter_decisions(
        dataset, key, dict(zip(inputs.synthetic_ids, passed.tolist(), strict=True))
    )
    reasons = _manual_reasons(dataset, inputs.synthetic_ids, reasons)
    fields += _write_fields(dataset, inputs.synthetic_ids, {reason_field(key): reasons})
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
        plot_paths = _plots(
            folder, flt, inputs, plane, filter_points, scores, passed, chosen, reasons
        )
        from brain.filters.plots import plot_sample_grid

        grid = plot_sample_grid(
            folder / "grid.png",
            _grid_rows(images, scores, passed, reasons),
            title=f"{key} ({method}) at level {chosen:.3g}: samples by score",
        )
        plot_paths.append(str(grid))
    results = {
        "key": key,
        "method": method,
        "n_synthetic": len(inputs.synthetic_ids),
        **counts,
        "n_duplicates": int((duplicate_of >= 0).sum()),
        "reasons": dict(sorted(Counter(str(r) for r in reasons).items())),
        "level": chosen,
        "default_level": float(flt.default_level_),
        "threshold": float(flt.threshold(chosen)),
        "score_field": field,
        "reason_field": reason_field(key),
        "fields": fields,
        "tags": [pass_tag(key), reject_tag(key)],
        "views": list(views),
        "brain_key": brain_key,
        "plots": plot_paths,
        "embed_run": inputs.embed_run,
        "field": inputs.field,
        "fine_field": inputs.fine_field,
        "n_real": len(inputs.real_ids),
        "n_real_rare": int(inputs.rare.sum()),
        "calibration": calibration_report,
        "scorecard": scorecard,
        "warnings": warnings,
        "status": "done",
    }
    store_run(dataset, "filter", key, config, results)
    return results


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
