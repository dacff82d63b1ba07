"""Run a study end to end, resumably: generators, baseline and curated classifiers, embeddings,
the filter, SSIM, statistics and the report.

Every step stores a run on the dataset; a rerun skips steps whose stored run matches the config
(classifier cells) or continues them (generators). The test split is used only to report: the
classifiers pick epochs on val, the filter level is calibrated on val, and synthetic training
views are checked to hold no real val or test sample.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fiftyone import ViewField as F

from brain.runs import has_run, load_run, run_key, store_run
from curation.datasets import builtin_views, open_dataset, resolve_view, save_view
from curation.errors import CurateError
from curation.experiment.cells import Cell, study_cells, synthetic_view_name
from curation.experiment.config import ExperimentConfig
from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, REAL, SPLIT_FIELD, SYNTHETIC
from curation.tags import pass_tag

Echo = Callable[[str], None]


def filter_key(config: ExperimentConfig) -> str:
    """The filter run (and tag prefix) of an experiment."""
    return f"{config.name.replace('-', '_')}_filter"


def embed_name(config: ExperimentConfig) -> str:
    """The embedding run of an experiment."""
    return f"{config.name}-emb"


def _generator_samples(dataset, generator_name: str):
    """Synthetic samples made by generator run ``generator_name`` (or, for samples made
    elsewhere, whose lineage names that generator)."""
    made_by = (F(f"{LINEAGE_FIELD}.run") == generator_name) | (
        F(f"{LINEAGE_FIELD}.generator") == generator_name
    )
    return dataset.match((F(ORIGIN_FIELD) == SYNTHETIC) & made_by)


def _check_training_view(view, what: str) -> None:
    """Synthetic training views must never carry a real val/test sample (or any test sample)."""
    leaks = view.match((F(ORIGIN_FIELD) == REAL) | (F(SPLIT_FIELD).is_in(["val", "test"])))
    if len(leaks):
        raise CurateError(f"{what} holds {len(leaks)} real or val/test sample(s)")


def _generate(config: ExperimentConfig, echo: Echo, progress: bool) -> dict[str, dict]:
    from generators.api import generate, report_dict

    reports = {}
    for gen in config.generators:
        if gen.method == "existing":
            continue
        echo(f"[generate] {gen.name} ({gen.method})")
        report = generate(
            config.dataset,
            gen.method,
            gen.name,
            condition=gen.condition,
            source_view=gen.source,
            n=gen.n,
            steps=gen.steps,
            train_steps=gen.train_steps,
            resume=True,
            seed=gen.seed,
            params=dict(gen.params),
            progress=progress,
        )
        reports[gen.name] = report_dict(report)
    return reports


def _train_settings(config: ExperimentConfig) -> dict[str, Any]:
    return {"seeds": config.seeds, **dataclasses.asdict(config.classifier)}


def _finished(dataset, cell: Cell, with_view: str | None, settings: dict) -> bool:
    """Whether the cell's stored run used these settings and the same amount of training data
    (a changed filter outcome changes the synthetic view, so the cell is trained again)."""
    if not has_run(dataset, "train", cell.run):
        return False
    stored, results = load_run(dataset, "train", cell.run)
    n_train = len(builtin_views(dataset)["real-train"])
    if with_view is not None:
        n_train += len(dataset.load_saved_view(with_view))
    same_settings = all(
        stored.get(key) == value for key, value in settings.items() if key != "seeds"
    )
    return (
        "per_seed" in results
        and results.get("n_train_available") == n_train
        and len(stored.get("seeds", [])) == settings["seeds"]
        and same_settings
        and stored.get("augment") == cell.augment
        and stored.get("with_view") == with_view
    )


def _train_cell(config, cell: Cell, echo: Echo, progress: bool, *, force: bool = False) -> None:
    from brain.classifier import train_classifier

    dataset = open_dataset(config.dataset)
    with_view = (
        synthetic_view_name(config.name, cell.generator, cell.filtered) if cell.generator else None
    )
    settings = _train_settings(config)
    if with_view is not None:
        view = dataset.load_saved_view(with_view)
        _check_training_view(view, f"view {with_view!r}")
        if not len(view):  # e.g. the filter rejected every sample: real data only
            echo(f"[note] {with_view!r} is empty: {cell.run} trains on real data only")
            with_view = None
    if not force and _finished(dataset, cell, with_view, settings):
        echo(f"[train] {cell.run}: done earlier, skipped")
        return
    echo(f"[train] {cell.run}: {cell.data_label}, {config.seeds} seeds")
    train_classifier(
        config.dataset,
        cell.run,
        augment=cell.augment,
        with_view=with_view,
        progress=progress,
        **settings,
    )


def _embed(config: ExperimentConfig, echo: Echo, progress: bool) -> str:
    from brain.embeddings import compute_embeddings

    dataset = open_dataset(config.dataset)
    name = embed_name(config)
    source = Cell(config.name, augment=config.augment[0]).run
    if has_run(dataset, "embed", name):
        stored, results = load_run(dataset, "embed", name)
        embedded_at = dataset.get_run_info(run_key("embed", name)).timestamp
        trained_at = dataset.get_run_info(run_key("train", source)).timestamp
        if (
            stored.get("train_run") == source
            and results.get("n") == len(dataset)
            and embedded_at > trained_at
        ):
            echo(f"[embed] {name}: done earlier, skipped")
            return name
    echo(f"[embed] {name}: penultimate layer of {source}")
    compute_embeddings(config.dataset, source, view="all", name=name, progress=progress)
    return name


def _filter(config: ExperimentConfig, embedding: str, echo: Echo) -> dict[str, Any]:
    from brain.filter_calibration import CalibrationSettings
    from brain.filtering import run_filter
    from brain.training import shared_settings

    key = filter_key(config)
    calibration = CalibrationSettings(
        **shared_settings(config.classifier, CalibrationSettings),
        seeds=config.filter.calibrate_seeds,
        augment=config.augment[0],
    )
    how = "level calibrated on val" if config.filter.calibrate else f"level {config.filter.level}"
    echo(f"[filter] {key}: {config.filter.method}, {how}")
    return run_filter(
        config.dataset,
        config.filter.method,
        key,
        embed=embedding,
        level=config.filter.level,
        calibrate=config.filter.calibrate,
        calibration=calibration,
        params=dict(config.filter.params),
    )


def _save_generator_views(config: ExperimentConfig) -> dict[str, dict[str, int]]:
    dataset = open_dataset(config.dataset)
    counts = {}
    for gen in config.generators:
        samples = _generator_samples(dataset, gen.name)
        if len(samples) == 0:
            raise CurateError(
                f"dataset {config.dataset!r} has no synthetic samples of generator {gen.name!r}"
            )
        passing = samples.match_tags(pass_tag(filter_key(config)))
        for filtered, view in ((False, samples), (True, passing)):
            _check_training_view(view, f"generator {gen.name!r}")
            save_view(dataset, synthetic_view_name(config.name, gen.name, filtered), view)
        counts[gen.name] = {"before": len(samples), "after": len(passing)}
    return counts


def _preflight(config: ExperimentConfig) -> None:
    """Check what the config needs before any work, so a bad config changes nothing."""
    from curation.experiment.config import EXISTING

    dataset = open_dataset(config.dataset)
    for gen in config.generators:
        if gen.method == EXISTING and not len(_generator_samples(dataset, gen.name)):
            raise CurateError(
                f"dataset {config.dataset!r} has no synthetic samples of generator {gen.name!r}"
            )
        if gen.source is not None:
            resolve_view(dataset, gen.source)


def run_experiment(
    config: ExperimentConfig,
    *,
    out: str | Path | None = None,
    echo: Echo = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the study that ``config`` describes and write its report.

    Returns:
        The report's data: ``tables`` (rows per cell with P, R, F1, AUC as mean and std),
        ``filter_counts`` (before/after per generator), ``comparisons`` (paired tests against
        the real baseline), ``report`` (path of ``report.md``).
    """
    from brain.near_copies import compute_max_ssim
    from curation.experiment.report import collect_results, write_report

    _preflight(config)
    if not config.generators:
        echo("[note] no generators configured: only the real baselines are trained")
    out = Path(out or config.out or Path("runs") / config.name)
    generators = [g.name for g in config.generators]
    cells = study_cells(config.name, generators, config.augment)

    generation = _generate(config, echo, progress)
    for cell in cells:
        if cell.generator is None:
            _train_cell(config, cell, echo, progress)
    filter_result: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    if generators:
        embedding = _embed(config, echo, progress)
        filter_result = _filter(config, embedding, echo)
        counts = _save_generator_views(config)
        if config.ssim.enabled:
            echo("[ssim] maximum SSIM of synthetic samples against real train")
            compute_max_ssim(
                config.dataset,
                threshold=config.ssim.threshold,
                size=config.classifier.size,
                embed_name=embedding,
                run=config.name,
                progress=progress,
            )
        for cell in cells:
            if cell.generator is not None:
                _train_cell(config, cell, echo, progress)

    results = collect_results(config, cells, counts, filter_result, generation)
    store_run(
        open_dataset(config.dataset),
        "experiment",
        config.name,
        config.as_dict(),
        {
            "tables": results["tables"],
            "filter_counts": counts,
            "comparisons": results["comparisons"],
        },
    )
    results["report"] = str(write_report(config, results, out))
    return results
