"""Run a study end to end, resumably: generators, baseline and curated classifiers, embeddings,
the filter, SSIM, statistics and the report.

Every step stores a run on the dataset; a rerun skips steps whose stored run matches the config
(classifier cells) or continues them (generators). The trainings of each phase (the real
cells; the embedding network; the generator cells) go to a trainer as one batch: in this process,
or as Ray tasks (:mod:`curation.experiment.cluster`). The test split is used only to report: the
classifiers pick epochs on val, the filter level is calibrated on val, and synthetic training
views are checked to hold no real val or test sample. The study's own record
(:mod:`curation.experiment.record`) owns every run and view it made.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fiftyone as fo

from brain.filter_calibration import CalibrationSettings
from curation.datasets import open_dataset, resolve_view
from curation.errors import CurateError
from curation.experiment.cells import (
    SYNTHETIC_ARMS,
    Cell,
    embed_name,
    embedder_run,
    filter_key,
    random_view_name,
    study_cells,
    synthetic_view_name,
)
from curation.experiment.cluster import Trainer, open_trainer
from curation.experiment.config import EXISTING, ExperimentConfig
from curation.experiment.cv import run_cross_validated
from curation.experiment.jobs import TrainJob, finished
from curation.experiment.leakage import check_leakage
from curation.experiment.record import EXPERIMENT, ExperimentRecord, ExperimentResults
from curation.experiment.report import write_cv_report, write_report
from curation.experiment.results import collect_results
from curation.experiment.views import (
    check_training_view,
    generator_samples,
    save_generator_views,
    size_matched_sources,
)
from curation.media import check_out_folder, media_root
from curation.runs.embed.compute import EMBED, compute_embeddings
from curation.runs.filter.run import run_filter
from curation.runs.generate.run import describe_sources, generate
from curation.runs.records import run_timestamp
from curation.runs.ssim import compute_max_ssim
from curation.schema import LABEL_FIELD

Echo = Callable[[str], None]


def _generate(dataset: fo.Dataset, config: ExperimentConfig, echo: Echo, progress: bool) -> dict:
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
        echo(f"[generate] {gen.name}: {describe_sources(report)}")
        reports[gen.name] = report.as_dict()
    return reports


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


def _cell_jobs(dataset, config, cell: Cell, echo: Echo, counts=None) -> list[TrainJob]:
    """The train runs of a cell (per-seed arms: one run per seed, each drawing its own data)."""
    settings = config.classifier.replace(augment=cell.augment)
    if cell.arm == "class-weighted":
        settings = settings.replace(class_weighted=True)
    jobs = []
    if not cell.per_seed:
        with_view = None
        if cell.arm in ("all", "filtered"):
            with_view = synthetic_view_name(config.name, cell.generator, cell.filtered)
        jobs.append(TrainJob(cell.run, settings, config.seeds, with_view=with_view))
    for seed in range(config.seeds) if cell.per_seed else ():
        if cell.arm == "random-matched":
            view = random_view_name(config.name, cell.generator, seed)
            jobs.append(TrainJob(cell.seed_run(seed), settings, 1, seed, with_view=view))
        else:  # oversampled: as many real rare copies as the filter let through
            copies = (counts or {}).get(cell.generator, {}).get("after", 0)
            jobs.append(TrainJob(cell.seed_run(seed), settings, 1, seed, oversample=copies))
    return [
        dataclasses.replace(
            job,
            with_view=_usable_view(dataset, job.with_view, job.run, echo),
            what=f"{cell.data_label}, {job.seeds} seed(s)",
        )
        for job in jobs
    ]


def _train(dataset, jobs: list[TrainJob], trainer: Trainer, echo: Echo, progress: bool) -> None:
    """Train the jobs that no stored run holds yet, as one batch."""
    pending = []
    for job in jobs:
        if finished(dataset, job):
            echo(f"[train] {job.run}: done earlier, skipped")
        else:
            pending.append(job)
    if pending:
        trainer.train(dataset, pending, echo, progress)


def _train_cells(dataset, config, cells, trainer, echo, progress, counts=None) -> None:
    """Train every cell of ``cells`` (one batch)."""
    jobs = [job for cell in cells for job in _cell_jobs(dataset, config, cell, echo, counts)]
    _train(dataset, jobs, trainer, echo, progress)


def _embedder(dataset: fo.Dataset, config: ExperimentConfig, trainer, echo, progress) -> str:
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
    labels = config.embedding.label_field or "task labels"
    what = f"the embedding network ({labels})"
    job = TrainJob(embedder_run(config.name), settings, 1, label_field=label_field, what=what)
    _train(dataset, [job], trainer, echo, progress)
    return job.run


def _embed(dataset: fo.Dataset, config: ExperimentConfig, trainer, echo, progress) -> str:
    name = embed_name(config.name)
    source = _embedder(dataset, config, trainer, echo, progress)
    if EMBED.exists(dataset, name):
        stored, results = EMBED.load(dataset, name)
        embedded_at = run_timestamp(dataset, "embed", name)
        trained_at = run_timestamp(dataset, "train", source)
        if stored.train_run == source and results.n == len(dataset) and embedded_at > trained_at:
            echo(f"[embed] {name}: done earlier, skipped")
            return name
    echo(f"[embed] {name}: penultimate layer of {source}")
    compute_embeddings(
        dataset, source, view="all", name=name, overwrite=True, progress=progress
    )  # the study owns its run names
    return name


def _filter(
    dataset: fo.Dataset, config: ExperimentConfig, embedding: str, echo: Echo, progress: bool
):
    key = filter_key(config.name)
    # the sweep trains like the study's classifiers, without early stopping or a subset
    train = config.classifier.replace(augment=config.augment[0], patience=None, subset=None)
    calibration = CalibrationSettings(
        seeds=config.filter.calibrate_seeds, train=train, progress=progress
    )
    choice = config.filter.level_choice(calibration)
    echo(f"[filter] {key}: {config.filter.method}, {choice.describe()}")
    return run_filter(
        dataset,
        config.filter.method,
        key,
        embed=embedding,
        level=choice,
        params=dict(config.filter.params),
        copy_threshold=config.filter.copy_threshold,
        overwrite=True,  # the study owns its filter key
    )


def _preflight(dataset: fo.Dataset, config: ExperimentConfig) -> None:
    """Check what the config needs before any work, so a bad config changes nothing."""
    for gen in config.generators:
        if gen.method == EXISTING and not len(generator_samples(dataset, gen.name)):
            raise CurateError(
                f"dataset {config.dataset!r} has no synthetic samples of generator {gen.name!r}"
            )
        if gen.source is not None:
            resolve_view(dataset, gen.source)


def report_folder(dataset_name: str, name: str) -> Path:
    """Where study ``name`` of a dataset writes its report unless told:
    ``<media>/experiments/<name>``, under the dataset's media folder."""
    return media_root(dataset_name) / "experiments" / name


def run_experiment(
    config: ExperimentConfig,
    *,
    out: str | Path | None = None,
    echo: Echo = print,
    progress: bool = True,
    trainer: Trainer | None = None,
) -> dict[str, Any]:
    """Run the study that ``config`` describes and write its report.

    The trainings run where ``trainer`` says (:mod:`curation.experiment.cluster`); by default
    where ``config.ray`` says: as Ray tasks, or (no ``ray`` section) in this process. The report
    goes to ``out``, else the config's ``out``, else :func:`report_folder` (under the dataset's
    media folder); it is checked before any work (:func:`curation.names.check_out_folder`:
    never empty, the current directory, the media folder or a folder of the dataset's images).

    Returns:
        The report's data: ``tables`` (rows per cell with P, R, F1, AUC as mean and std),
        ``filter_counts`` (before/after/leaks per generator), ``comparisons`` (paired tests,
        with the detectable difference and a verdict), ``verdicts`` (the headline lines),
        ``leakage`` and ``report`` (path of ``report.md``).
    """
    dataset = open_dataset(config.dataset)
    _preflight(dataset, config)
    default = config.out if config.out is not None else report_folder(dataset.name, config.name)
    out = check_out_folder(out if out is not None else default, dataset)
    if trainer is None:  # connect (a Ray address that does not answer fails here) and go on
        with open_trainer(config.ray, echo) as trainer:
            return run_experiment(config, out=out, echo=echo, progress=progress, trainer=trainer)
    record = ExperimentRecord(config.as_dict())
    if config.cv:
        per_fold = functools.partial(run_experiment, trainer=trainer)
        results = run_cross_validated(config, out, echo, progress, per_fold)
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
    missing = [a for a in ("filtered", "oversampled") if a not in arms]
    if generators and missing and any(a in arms for a in SYNTHETIC_ARMS):
        echo(
            f"[note] arm(s) {', '.join(missing)} added: a synthetic arm's 'helps' must also beat "
            "as many copies of real rare train images"
        )
        arms += missing
    cells = study_cells(config.name, generators, config.augment, arms)

    generation = _generate(dataset, config, echo, progress)
    real_cells = [cell for cell in cells if cell.generator is None]
    _train_cells(dataset, config, real_cells, trainer, echo, progress)
    filter_result: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    leakage: dict[str, Any] = {}
    if generators:
        embedding = _embed(dataset, config, trainer, echo, progress)
        filter_result = _filter(dataset, config, embedding, echo, progress).to_record()
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
                overwrite=True,  # the study owns its run names
                progress=progress,
            )
        generator_cells = [cell for cell in cells if cell.generator is not None]
        _train_cells(dataset, config, generator_cells, trainer, echo, progress, counts)

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
