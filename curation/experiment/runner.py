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

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from brain.runs import has_run, load_run, run_key, store_run
from curation.datasets import builtin_views, open_dataset, resolve_view, save_view
from curation.errors import CurateError
from curation.experiment.cells import (
    Cell,
    random_view_name,
    study_cells,
    synthetic_view_name,
)
from curation.experiment.config import ExperimentConfig
from curation.schema import LABEL_FIELD, LINEAGE_FIELD, ORIGIN_FIELD, REAL, SPLIT_FIELD, SYNTHETIC
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


def size_matched_sources(config: ExperimentConfig, gen) -> str:
    """Save and name the view of ``gen``'s sources whose width and height lie within the range
    of the real rare train images, so that a generator that keeps its source's outline makes
    objects of the rare class's size (e.g. a small chromosome from small chromosomes).

    Raises:
        CurateError: no real rare train image, or no source within the range.
    """
    dataset = open_dataset(config.dataset)
    rare = builtin_views(dataset)["rare-train"]
    if not len(rare):
        raise CurateError("source_match size: no real rare train image to take the sizes from")
    widths, heights = rare.values(["metadata.width", "metadata.height"])
    view = resolve_view(dataset, gen.source or "pool").match(
        (F("metadata.width") >= min(widths))
        & (F("metadata.width") <= max(widths))
        & (F("metadata.height") >= min(heights))
        & (F("metadata.height") <= max(heights))
    )
    if not len(view):
        raise CurateError(
            f"generator {gen.name!r}: no source in {gen.source or 'pool'!r} lies within the rare "
            f"class's sizes ({min(widths)}-{max(widths)} x {min(heights)}-{max(heights)} px)"
        )
    name = f"{config.name}-{gen.name}-sources"
    save_view(dataset, name, view)
    return name


def _generate(config: ExperimentConfig, echo: Echo, progress: bool) -> dict[str, dict]:
    from generators.api import generate, report_dict

    reports = {}
    for gen in config.generators:
        if gen.method == "existing":
            continue
        source = gen.source
        if gen.source_match == "size":
            source = size_matched_sources(config, gen)
            n_sources = len(open_dataset(config.dataset).load_saved_view(source))
            echo(f"[generate] {gen.name}: {n_sources} sources within the rare class's sizes")
        echo(f"[generate] {gen.name} ({gen.method})")
        report = generate(
            config.dataset,
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
        reports[gen.name] = report_dict(report)
    return reports


def _train_settings(config: ExperimentConfig, cell: Cell) -> dict[str, Any]:
    """The ``train_classifier`` options of ``cell`` (per-seed arms: without the seeds)."""
    settings = {"seeds": config.seeds, **dataclasses.asdict(config.classifier)}
    if cell.arm == "class-weighted":
        settings["class_weighted"] = True
    return settings


def _finished(dataset, run: str, with_view: str | None, settings: dict, augment: bool) -> bool:
    """Whether train run ``run`` used these settings and the same amount of training data (a
    changed filter outcome changes the synthetic view, so the cell is trained again)."""
    if not has_run(dataset, "train", run):
        return False
    stored, results = load_run(dataset, "train", run)
    n_train = len(builtin_views(dataset)["real-train"])
    if with_view is not None:
        n_train += len(dataset.load_saved_view(with_view))
    seeds = [settings.get("seed", 0) + i for i in range(settings["seeds"])]
    same_settings = all(
        stored.get(key) == value for key, value in settings.items() if key not in ("seeds", "seed")
    )
    return (
        "per_seed" in results
        and results.get("n_train_available") == n_train
        and stored.get("seeds") == seeds
        and same_settings
        and stored.get("augment") == augment
        and stored.get("with_view") == with_view
    )


def _usable_view(dataset, name: str | None, run: str, echo: Echo) -> str | None:
    """``name`` checked to hold no real or val/test sample; ``None`` when it is empty."""
    if name is None:
        return None
    view = dataset.load_saved_view(name)
    _check_training_view(view, f"view {name!r}")
    if not len(view):  # e.g. the filter rejected every sample: real data only
        echo(f"[note] {name!r} is empty: {run} trains on real data only")
        return None
    return name


def _train_run(config, cell: Cell, run: str, settings, with_view, echo, progress, force) -> None:
    from brain.classifier import train_classifier

    dataset = open_dataset(config.dataset)
    with_view = _usable_view(dataset, with_view, run, echo)
    if not force and _finished(dataset, run, with_view, settings, cell.augment):
        echo(f"[train] {run}: done earlier, skipped")
        return
    echo(f"[train] {run}: {cell.data_label}, {settings['seeds']} seed(s)")
    train_classifier(
        config.dataset,
        run,
        augment=cell.augment,
        with_view=with_view,
        progress=progress,
        **settings,
    )


def _train_cell(
    config, cell: Cell, echo: Echo, progress: bool, *, counts=None, force: bool = False
) -> None:
    """Train the cell's run (per-seed arms: one run per seed, each drawing its own data)."""
    settings = _train_settings(config, cell)
    if not cell.per_seed:
        with_view = None
        if cell.arm in ("all", "filtered"):
            with_view = synthetic_view_name(config.name, cell.generator, cell.filtered)
        _train_run(config, cell, cell.run, settings, with_view, echo, progress, force)
        return
    for seed in range(config.seeds):
        one = {**settings, "seeds": 1, "seed": seed}
        with_view = None
        if cell.arm == "random-matched":
            with_view = random_view_name(config.name, cell.generator, seed)
        else:  # oversampled: as many real rare copies as the filter let through
            one["oversample"] = (counts or {}).get(cell.generator, {}).get("after", 0)
        _train_run(config, cell, cell.seed_run(seed), one, with_view, echo, progress, force)


def _embedder(config: ExperimentConfig, echo: Echo, progress: bool) -> str:
    """The train run whose network embeds: the real baseline cell's, or a network trained for
    the filter alone (``embedding:`` in the config, e.g. on fine labels)."""
    from brain.classifier import train_classifier

    if config.embedding is None:
        return Cell(config.name, augment=config.augment[0]).run
    run = f"{config.name}-embedder"
    settings = {
        **dataclasses.asdict(config.classifier),
        "seeds": 1,
        "epochs": config.embedding.epochs,
        "schedule": config.embedding.schedule,
        "label_field": config.embedding.label_field or LABEL_FIELD,
    }
    if settings["label_field"] != LABEL_FIELD:
        settings["select"] = "loss"  # the fine classes, not the task, shape this network
    dataset = open_dataset(config.dataset)
    if _finished(dataset, run, None, settings, config.embedding.augment):
        echo(f"[train] {run}: done earlier, skipped")
        return run
    echo(f"[train] {run}: the embedding network ({config.embedding.label_field or 'task labels'})")
    train_classifier(
        config.dataset, run, augment=config.embedding.augment, progress=progress, **settings
    )
    return run


def _embed(config: ExperimentConfig, echo: Echo, progress: bool) -> str:
    from brain.embeddings import compute_embeddings

    dataset = open_dataset(config.dataset)
    name = embed_name(config)
    source = _embedder(config, echo, progress)
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
    how = (
        f"level calibrated on val ({config.filter.calibrate})"
        if config.filter.calibrate
        else f"level {config.filter.level}"
    )
    echo(f"[filter] {key}: {config.filter.method}, {how}")
    return run_filter(
        config.dataset,
        config.filter.method,
        key,
        embed=embedding,
        level=config.filter.level,
        calibrate=config.filter.calibrate,
        target=config.filter.target,
        calibration=calibration,
        params=dict(config.filter.params),
    )


LEAK_TAG = "leak"
LEAK_FIELD = "leak_of"


def _leakage(config: ExperimentConfig, embedding: str, echo: Echo) -> dict[str, Any]:
    """Find synthetic near-copies of real val or test images: each synthetic sample's nearest
    real neighbours over train, val and test in the embedding space, then the exact SSIM with
    them. Samples at or above the threshold with a val/test image are tagged ``leak`` (field
    ``leak_of``: that image's id) and kept out of every training arm.

    Returns:
        ``threshold``, ``n_checked``, ``n_leaks`` and ``by_generator`` (leaks per lineage run).
    """
    from sklearn.neighbors import NearestNeighbors

    from brain.data import decode_view, stack_images
    from brain.ssim import pairwise_ssim
    from curation.schema import size_policy

    dataset = open_dataset(config.dataset)
    embed_config, _ = load_run(dataset, "embed", embedding)
    field = embed_config["field"]
    real = dataset.match((F(ORIGIN_FIELD) == REAL) & F(SPLIT_FIELD).is_in(["train", "val", "test"]))
    synthetic = dataset.match(F(ORIGIN_FIELD) == SYNTHETIC).exists(field)
    real = real.exists(field)
    dataset.untag_samples(LEAK_TAG)
    if not len(synthetic) or not len(real):
        return {"threshold": config.leakage.threshold, "n_checked": 0, "n_leaks": 0}
    real_ids, real_vectors, splits = real.values(["id", field, SPLIT_FIELD])
    syn_ids, syn_vectors, runs = synthetic.values(["id", field, f"{LINEAGE_FIELD}.run"])
    k = min(config.leakage.neighbours, len(real_ids))
    _, nearest = NearestNeighbors(n_neighbors=k).fit(real_vectors).kneighbors(syn_vectors)
    size, pad = size_policy(dataset)
    size = config.classifier.size or size

    def fitted(view) -> np.ndarray:
        arrays = decode_view(view, progress=False).arrays
        return stack_images(arrays, size, pad).permute(0, 2, 3, 1).numpy()

    real_images = fitted(real)
    syn_images = fitted(synthetic)
    leaks: dict[str, str] = {}
    for i, neighbours in enumerate(nearest):
        held_out = [j for j in neighbours if splits[j] in ("val", "test")]
        if not held_out:
            continue
        scores = pairwise_ssim(syn_images[i : i + 1], real_images[held_out])[0]
        best = int(np.argmax(scores))
        if scores[best] >= config.leakage.threshold:
            leaks[syn_ids[i]] = real_ids[held_out[best]]
    if not dataset.has_sample_field(LEAK_FIELD):
        dataset.add_sample_field(LEAK_FIELD, fo.StringField)
    synthetic.set_values(LEAK_FIELD, [leaks.get(i) for i in syn_ids])
    if leaks:
        dataset.select(list(leaks)).tag_samples(LEAK_TAG)
        echo(f"[leakage] {len(leaks)} synthetic near-copies of val/test images: not trained on")
    by_run: dict[str, int] = {}
    for sample_id, run in zip(syn_ids, runs, strict=True):
        if sample_id in leaks:
            by_run[run or "(no lineage)"] = by_run.get(run or "(no lineage)", 0) + 1
    return {
        "threshold": config.leakage.threshold,
        "n_checked": len(syn_ids),
        "n_leaks": len(leaks),
        "by_generator": by_run,
    }


def _save_generator_views(config: ExperimentConfig) -> dict[str, dict[str, int]]:
    """Per generator: its samples (all), those that passed, and per seed a random subset as
    large as the passing one; leaks are left out of all of them."""
    dataset = open_dataset(config.dataset)
    counts = {}
    for gen in config.generators:
        samples = _generator_samples(dataset, gen.name)
        if len(samples) == 0:
            raise CurateError(
                f"dataset {config.dataset!r} has no synthetic samples of generator {gen.name!r}"
            )
        usable = samples.match(~F("tags").contains(LEAK_TAG))
        passing = usable.match_tags(pass_tag(filter_key(config)))
        for filtered, view in ((False, usable), (True, passing)):
            _check_training_view(view, f"generator {gen.name!r}")
            save_view(dataset, synthetic_view_name(config.name, gen.name, filtered), view)
        ids = sorted(usable.values("id"))
        for seed in range(config.seeds):
            rng = np.random.default_rng([seed, *gen.name.encode()])
            drawn = list(rng.choice(ids, size=len(passing), replace=False)) if ids else []
            save_view(dataset, random_view_name(config.name, gen.name, seed), dataset.select(drawn))
        counts[gen.name] = {
            "before": len(samples),
            "after": len(passing),
            "leaks": len(samples) - len(usable),
        }
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
        ``filter_counts`` (before/after/leaks per generator), ``comparisons`` (paired tests,
        with the detectable difference and a verdict), ``verdicts`` (the headline lines),
        ``leakage`` and ``report`` (path of ``report.md``).
    """
    from brain.near_copies import compute_max_ssim
    from curation.experiment.report import collect_results, write_report

    _preflight(config)
    out = Path(out or config.out or Path("runs") / config.name)
    if config.cv:
        from curation.experiment.cv import run_cross_validated
        from curation.experiment.report import write_cv_report

        results = run_cross_validated(config, out, echo, progress)
        store_run(
            open_dataset(config.dataset),
            "experiment",
            config.name,
            config.as_dict(),
            {k: results[k] for k in ("tables", "comparisons", "verdicts", "fold_reports")},
        )
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

    generation = _generate(config, echo, progress)
    for cell in cells:
        if cell.generator is None:
            _train_cell(config, cell, echo, progress)
    filter_result: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    leakage: dict[str, Any] = {}
    if generators:
        embedding = _embed(config, echo, progress)
        filter_result = _filter(config, embedding, echo)
        if config.leakage.enabled:
            leakage = _leakage(config, embedding, echo)
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
                _train_cell(config, cell, echo, progress, counts=counts)

    results = collect_results(config, cells, counts, filter_result, generation)
    results["leakage"] = leakage
    store_run(
        open_dataset(config.dataset),
        "experiment",
        config.name,
        config.as_dict(),
        {
            "tables": results["tables"],
            "filter_counts": counts,
            "comparisons": results["comparisons"],
            "verdicts": results["verdicts"],
            "leakage": leakage,
        },
    )
    results["report"] = str(write_report(config, results, out))
    return results
