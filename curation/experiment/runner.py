"""Run a study end to end, resumably: generators, baseline and curated classifiers, embeddings,
the filter, SSIM, statistics and the report.

Every step stores a run on the dataset; a rerun skips steps whose stored run matches the config
(classifier cells) or continues them (generators). The test split is used only to report: the
classifiers pick epochs on val, the filter level is calibrated on val, and synthetic training
views are checked to hold no real val or test sample. The study's own record
(:mod:`curation.experiment.record`) owns every run and view it made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fiftyone as fo

from brain.settings import TrainSettings
from curation.datasets import builtin_views, open_dataset, resolve_view
from curation.errors import CurateError
from curation.experiment.cells import (
    Cell,
    embed_name,
    embedder_run,
    filter_key,
    random_view_name,
    study_cells,
    synthetic_view_name,
)
from curation.experiment.config import ExperimentConfig
from curation.experiment.record import EXPERIMENT, ExperimentRecord, ExperimentResults
from curation.experiment.views import (
    check_training_view,
    generator_samples,
    save_generator_views,
    size_matched_sources,
)
from curation.runs.records import run_timestamp
from curation.runs.train import TRAIN
from curation.schema import LABEL_FIELD

Echo = Callable[[str], None]

# settings compared with a stored train run to skip it; device and pad are resolved when
# training (from the machine and the dataset's policy), so they are not compared
_COMPARED = tuple(
    f.name for f in dataclasses.fields(TrainSettings) if f.name not in ("device", "pad")
)


def _generate(dataset: fo.Dataset, config: ExperimentConfig, echo: Echo, progress: bool) -> dict:
    from curation.runs.generate import generate

    reports = {}
    for gen in config.generators:
        if gen.method == "existing":
            continue
        source = gen.source
        if gen.source_match == "size":
            source = size_matched_sources(dataset, config, gen)
            n_sources = len(dataset.load_saved_view(source))
            echo(f"[generate] {gen.name}: {n_sources} sources within the rare class's sizes")
        echo(f"[generate] {gen.name} ({gen.method})")
        report = generate(
            dataset,
            gen.method,
            gen.name,
            condition=gen.condition,
            source_view=source,
            n=gen.n,
            steps=gen.steps,
            train_steps=gen.train_steps,
            resume=True,
            seed=gen.seed,
            params=dict(gen.params),
            progress=progress,
        )
        reports[gen.name] = report.as_dict()
    return reports


@dataclasses.dataclass(frozen=True)
class _Job:
    """One train run of the study: its settings and inputs."""

    run: str
    settings: TrainSettings
    seeds: int
    seed: int = 0
    with_view: str | None = None
    oversample: int = 0
    label_field: str = LABEL_FIELD


def _finished(dataset: fo.Dataset, job: _Job) -> bool:
    """Whether train run ``job.run`` used these settings and the same amount of training data
    (a changed filter outcome changes the synthetic view, so the cell is trained again)."""
    if not TRAIN.exists(dataset, job.run):
        return False
    stored, results = TRAIN.load(dataset, job.run)
    n_train = len(builtin_views(dataset)["real-train"])
    if job.with_view is not None:
        n_train += len(dataset.load_saved_view(job.with_view))
    same_settings = all(getattr(stored, k) == getattr(job.settings, k) for k in _COMPARED)
    return (
        bool(results.per_seed)
        and results.n_train_available == n_train
        and stored.seeds == [job.seed + i for i in range(job.seeds)]
        and same_settings
        and stored.oversample == job.oversample
        and stored.label_field == job.label_field
        and stored.with_view == job.with_view
    )


def _usable_view(dataset, name: str | None, run: str, echo: Echo) -> str | None:
    """``name`` checked to hold no real or val/test sample; ``None`` when it is empty."""
    if name is None:
        return None
    view = dataset.load_saved_view(name)
    check_training_view(view, f"view {name!r}")
    if not len(view):  # e.g. the filter rejected every sample: real data only
        echo(f"[note] {name!r} is empty: {run} trains on real data only")
        return None
    return name


def _train(dataset: fo.Dataset, job: _Job, progress: bool) -> None:
    from curation.runs.train import train_classifier

    train_classifier(
        dataset,
        job.run,
        job.settings,
        seeds=job.seeds,
        seed=job.seed,
        with_view=job.with_view,
        oversample=job.oversample,
        label_field=job.label_field,
        progress=progress,
    )


def _train_cell(dataset, config, cell: Cell, echo: Echo, progress: bool, counts=None) -> None:
    """Train the cell's run (per-seed arms: one run per seed, each drawing its own data)."""
    settings = config.classifier.replace(augment=cell.augment)
    if cell.arm == "class-weighted":
        settings = settings.replace(class_weighted=True)
    jobs = []
    if not cell.per_seed:
        with_view = None
        if cell.arm in ("all", "filtered"):
            with_view = synthetic_view_name(config.name, cell.generator, cell.filtered)
        jobs.append(_Job(cell.run, settings, config.seeds, with_view=with_view))
    for seed in range(config.seeds) if cell.per_seed else ():
        if cell.arm == "random-matched":
            view = random_view_name(config.name, cell.generator, seed)
            jobs.append(_Job(cell.seed_run(seed), settings, 1, seed, with_view=view))
        else:  # oversampled: as many real rare copies as the filter let through
            copies = (counts or {}).get(cell.generator, {}).get("after", 0)
            jobs.append(_Job(cell.seed_run(seed), settings, 1, seed, oversample=copies))
    for job in jobs:
        job = dataclasses.replace(
            job, with_view=_usable_view(dataset, job.with_view, job.run, echo)
        )
        if _finished(dataset, job):
            echo(f"[train] {job.run}: done earlier, skipped")
            continue
        echo(f"[train] {job.run}: {cell.data_label}, {job.seeds} seed(s)")
        _train(dataset, job, progress)


def _embedder(dataset: fo.Dataset, config: ExperimentConfig, echo: Echo, progress: bool) -> str:
    """The train run whose network embeds: the real baseline cell's, or a network trained for
    the filter alone (``embedding:`` in the config, e.g. on fine labels)."""
    if config.embedding is None:
        return Cell(config.name, augment=config.augment[0]).run
    label_field = config.embedding.label_field or LABEL_FIELD
    settings = config.classifier.replace(
        epochs=config.embedding.epochs,
        schedule=config.embedding.schedule,
        augment=config.embedding.augment,
    )
    if label_field != LABEL_FIELD:
        settings = settings.replace(select="loss")  # the fine classes, not the task, shape it
    job = _Job(embedder_run(config.name), settings, 1, label_field=label_field)
    if _finished(dataset, job):
        echo(f"[train] {job.run}: done earlier, skipped")
        return job.run
    labels = config.embedding.label_field or "task labels"
    echo(f"[train] {job.run}: the embedding network ({labels})")
    _train(dataset, job, progress)
    return job.run


def _embed(dataset: fo.Dataset, config: ExperimentConfig, echo: Echo, progress: bool) -> str:
    from curation.runs.embed import EMBED, compute_embeddings

    name = embed_name(config.name)
    source = _embedder(dataset, config, echo, progress)
    if EMBED.exists(dataset, name):
        stored, results = EMBED.load(dataset, name)
        embedded_at = run_timestamp(dataset, "embed", name)
        trained_at = run_timestamp(dataset, "train", source)
        if stored.train_run == source and results.n == len(dataset) and embedded_at > trained_at:
            echo(f"[embed] {name}: done earlier, skipped")
            return name
    echo(f"[embed] {name}: penultimate layer of {source}")
    compute_embeddings(dataset, source, view="all", name=name, progress=progress)
    return name


def _filter(dataset: fo.Dataset, config: ExperimentConfig, embedding: str, echo: Echo):
    from brain.filter_calibration import CalibrationSettings
    from curation.runs.filter import run_filter

    key = filter_key(config.name)
    # the sweep trains like the study's classifiers, without early stopping or a subset
    train = config.classifier.replace(augment=config.augment[0], patience=None, subset=None)
    calibration = CalibrationSettings(seeds=config.filter.calibrate_seeds, train=train)
    how = (
        f"level calibrated on val ({config.filter.calibrate})"
        if config.filter.calibrate
        else f"level {config.filter.level}"
    )
    echo(f"[filter] {key}: {config.filter.method}, {how}")
    return run_filter(
        dataset,
        config.filter.method,
        key,
        embed=embedding,
        level=config.filter.level,
        calibrate=config.filter.calibrate,
        target=config.filter.target,
        calibration=calibration,
        params=dict(config.filter.params),
    )


def _preflight(dataset: fo.Dataset, config: ExperimentConfig) -> None:
    """Check what the config needs before any work, so a bad config changes nothing."""
    from curation.experiment.config import EXISTING

    for gen in config.generators:
        if gen.method == EXISTING and not len(generator_samples(dataset, gen.name)):
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
        ``filter_counts`` (before/after/leaks per generator), ``comparisons`` (paired tests,
        with the detectable difference and a verdict), ``verdicts`` (the headline lines),
        ``leakage`` and ``report`` (path of ``report.md``).
    """
    from curation.experiment.report import collect_results, write_report

    dataset = open_dataset(config.dataset)
    _preflight(dataset, config)
    out = Path(out or config.out or Path("runs") / config.name)
    record = ExperimentRecord(config.as_dict())
    if config.cv:
        from curation.experiment.cv import run_cross_validated
        from curation.experiment.report import write_cv_report

        results = run_cross_validated(config, out, echo, progress, run_experiment)
        stored = ExperimentResults(
            **{k: results[k] for k in ("tables", "comparisons", "verdicts", "fold_reports")},
            out=str(out),
        )
        EXPERIMENT.store(dataset, config.name, record, stored)
        results["report"] = str(write_cv_report(config, results, out))
        return results
    if not config.generators:
        echo("[note] no generators configured: only the real baselines are trained")
    generators = [g.name for g in config.generators]
    arms = list(config.arms)
    if config.classifier.class_weighted and "class-weighted" in arms:
        echo("[note] the classifier is class-weighted already: no separate class-weighted arm")
        arms.remove("class-weighted")
    cells = study_cells(config.name, generators, config.augment, arms)

    generation = _generate(dataset, config, echo, progress)
    for cell in cells:
        if cell.generator is None:
            _train_cell(dataset, config, cell, echo, progress)
    filter_result: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    leakage: dict[str, Any] = {}
    if generators:
        from curation.experiment.leakage import check_leakage
        from curation.runs.ssim import compute_max_ssim

        embedding = _embed(dataset, config, echo, progress)
        filter_result = _filter(dataset, config, embedding, echo).to_record()
        if config.leakage.enabled:
            leakage = check_leakage(dataset, config, embedding, echo)
        counts = save_generator_views(dataset, config)
        if config.ssim.enabled:
            echo("[ssim] maximum SSIM of synthetic samples against real train")
            compute_max_ssim(
                dataset,
                threshold=config.ssim.threshold,
                size=config.classifier.size,
                embed_name=embedding,
                run=config.name,
                progress=progress,
            )
        for cell in cells:
            if cell.generator is not None:
                _train_cell(dataset, config, cell, echo, progress, counts=counts)

    results = collect_results(dataset, config, cells, counts, filter_result, generation)
    results["leakage"] = leakage
    stored = ExperimentResults(
        tables=results["tables"],
        filter_counts=counts,
        comparisons=results["comparisons"],
        verdicts=results["verdicts"],
        leakage=leakage,
        out=str(out),
    )
    EXPERIMENT.store(dataset, config.name, record, stored)
    results["report"] = str(write_report(config, results, out))
    return results
