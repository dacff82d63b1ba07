"""Filter runs: config -> run -> results under a key.

:func:`run_filter` fits a filter (:mod:`brain.filters`) on the real train split's embeddings of
an embed run, scores every synthetic sample and stores, under the key ``K``:

- the float field ``K_score`` on synthetic samples (higher = more like the real rare class),
  the string field ``K_reason`` (``pass``, or why the sample was rejected: ``unrealistic``,
  ``other-class``, ``near-copy``, ``copy-of-source``, ``copy-of-other-class``,
  ``outside-ellipse``, ... or ``manual-pass`` / ``manual-reject`` where a person decided) and,
  for filters made of parts, one float field per part (``K_realism``, ``K_rare_prob``,
  ``K_copy_ratio`` for ``combined``);
- the near-copy gate's fields ``K_copy_ssim``, ``K_copy_distance`` and ``K_copy_of``
  (:mod:`curation.runs.filter.copy_gate`: every filter rejects copies of real images on their
  pixels, whatever their score);
- the tags ``K:pass`` / ``K:reject`` on synthetic samples (a rerun replaces them; manual decisions
  win, see :mod:`curation.tags`); real samples are never tagged;
- the saved views ``real-train``, ``K-pass`` and ``K-reject``;
- a visualization brain run ``K_umap`` with the plane's points of the real train and synthetic
  samples (the App's Embeddings panel, coloured by ``origin``, ``ground_truth`` or ``K_score``);
- PNG plots under ``<media>/filters/K/``;
- with ``dedupe``, the tag ``duplicate`` and the field ``duplicate_of`` (shared by every filter
  run: the latest run's);
- the run record ``filter_K`` (:class:`FilterConfig`, :class:`FilterResults`: method,
  parameters, seed, embed run and field, the level choice and the level used, counts, reasons,
  calibration, a fidelity scorecard per generator, warnings), so several runs coexist and can
  be compared.

Samples without the embed run's embedding (added since it ran) are embedded with its network
(:mod:`curation.runs.embed.more`), and the run says so in a warning. Everything is read,
embedded, fitted, scored (and calibrated) before the first write: bad input leaves the dataset
unchanged. The record is stored first, naming everything the run will write, so a
run killed while writing can still be deleted. Deleting a run removes all of the above; the
shared ``real-train`` view and duplicate marks go with the last filter run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

from brain.copies import check_copy_threshold
from brain.filter_calibration import (
    PassRateCalibration,
    RetrainCalibration,
    calibrate_pass_rate,
    calibration_from_record,
)
from brain.filters import make_filter
from brain.filters.base import FilterOutput
from brain.filters.image_stats import image_statistics
from brain.filters.plots import plane_points, plot_filter
from brain.filters.scorecard import AUTHENTICITY_WARNING, generator_scorecards
from brain.level_choice import (
    DEFAULT_LEVEL,
    Fixed,
    LevelChoice,
    PassRate,
    Retrain,
    check_level_choice,
    level_choice_from_record,
)
from brain.metrics import FEW_RARE
from brain.size_policy import DEFAULT_PAD, SizePolicy
from curation.datasets import as_dataset, builtin_views, save_view
from curation.errors import CurateError
from curation.media import run_area_folder
from curation.names import (
    REAL_TRAIN,
    REAL_VAL,
    check_key,
    part_field,
    pass_tag,
    reason_field,
    reject_tag,
    score_field,
    view_names,
    visualization_key,
)
from curation.reasons import count_reasons
from curation.runs.base import RESOLVED, Record, RunKind, register
from curation.runs.filter import inputs as read
from curation.runs.filter import writes as write
from curation.runs.filter.calibrate import retrain_calibration
from curation.runs.filter.copy_gate import near_copy_gate
from curation.runs.filter.inputs import manual_reasons, probabilities
from curation.runs.filter.writes import DUPLICATE_FIELD, DUPLICATE_TAG, store_visualization
from curation.runs.footprint import Footprint, own_folder
from curation.runs.records import list_runs
from curation.schema import run_size_policy
from curation.tags import apply_filter_decisions

TRAIN_VIEW = REAL_TRAIN


def plots_folder(dataset_name: str, key: str):
    """Where filter run ``key`` writes its plots (not created here), strictly inside
    ``<media>/filters``."""
    return run_area_folder(dataset_name, "filters", key)


@dataclass(frozen=True)
class FilterConfig(Record):
    """What a filter run is asked (stored as ``config``, resolved: the filter's parameters with
    their defaults, the embed run read, the size policy used; ``level_choice`` as its
    ``as_dict()``, read back from older records' ``level``, ``calibrate`` and ``target`` too).
    Built and checked at the edge (:func:`run_filter`, the CLI, the App, a study)."""

    method: str = ""
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int | None = dataclasses.field(default=None, metadata=RESOLVED)
    embed_run: str | None = None
    field: str | None = dataclasses.field(default=None, metadata=RESOLVED)
    classifier_run: str | None = dataclasses.field(default=None, metadata=RESOLVED)
    level_choice: LevelChoice = DEFAULT_LEVEL
    copy_threshold: float | None = None
    size: int | None = None
    pad: str = DEFAULT_PAD
    dedupe: bool = True

    def __post_init__(self) -> None:
        check_copy_threshold(self.copy_threshold)
        if not isinstance(self.level_choice, Fixed | PassRate | Retrain):
            raise TypeError(
                f"level_choice must be Fixed, PassRate or Retrain, got {self.level_choice!r}"
            )

    @property
    def size_policy(self) -> SizePolicy:
        """The size policy the run's image checks use (``size`` ``None``: the dataset's)."""
        return SizePolicy.from_record({"size": self.size, "pad": self.pad})

    @classmethod
    def from_record(cls, data):
        stored = data.get("level_choice")
        choice = level_choice_from_record(stored if stored is not None else data)
        return super().from_record({**data, "level_choice": choice})

    def to_record(self) -> dict[str, Any]:
        return {**super().to_record(), "level_choice": self.level_choice.as_dict()}


@dataclass
class FilterResults(Record):
    """What a filter run gave (stored as ``results``; :func:`run_filter` returns it).

    Attributes:
        key, method: the run key and the filter.
        n_synthetic, n_pass, n_reject, n_overridden, n_duplicates: counts (after manual
            decisions and duplicates).
        reasons: how many samples got each reason.
        level, default_level, threshold: the level used, the filter's own, the score asked.
        score_field, reason_field, fields, tags, views, brain_key, plots: what it wrote.
        embed_run, field, fine_field: the embeddings read (and the fine-label field).
        n_real, n_real_rare: real train samples fitted on, and rare ones among them.
        calibration: how the level was calibrated (``None``: not calibrated).
        scorecard: per generator run, the fidelity of all and of passing samples.
        copies: the near-copy gate: its thresholds (``ssim``, ``distance``, how ``chosen``),
            the comparison ``size`` and how many samples it ``rejected`` per reason.
        by_generator: per generator run: ``n``, ``n_pass``, ``reasons`` (counts) and
            ``authenticity`` of the passing samples (``None`` when none pass).
        warnings: what the fit had to simplify, or rests on few samples.
        status: ``writing`` while the run writes (and if it was killed), then ``done``.
    """

    key: str = ""
    method: str = ""
    n_synthetic: int = 0
    n_pass: int = 0
    n_reject: int = 0
    n_overridden: int = 0
    n_duplicates: int = 0
    reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    level: float | None = None
    default_level: float | None = None
    threshold: float | None = None
    score_field: str = ""
    reason_field: str = ""
    fields: list[str] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)
    views: list[str] = dataclasses.field(default_factory=list)
    brain_key: str | None = None
    plots: list[str] = dataclasses.field(default_factory=list)
    embed_run: str | None = None
    field: str | None = None
    fine_field: str | None = None
    n_real: int = 0
    n_real_rare: int = 0
    calibration: PassRateCalibration | RetrainCalibration | None = None
    scorecard: dict[str, Any] = dataclasses.field(default_factory=dict)
    copies: dict[str, Any] = dataclasses.field(default_factory=dict)
    by_generator: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    status: str = "done"

    @classmethod
    def from_record(cls, data):
        results = super().from_record(data)
        if isinstance(results.calibration, dict):
            results.calibration = calibration_from_record(results.calibration)
        return results

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        if self.calibration is not None:
            record["calibration"] = self.calibration.as_dict()
        return record


@register
class FilterKind(RunKind):
    """Filter runs: score, reason and part fields, pass/reject tags, views, the plane's brain
    run and the plots; the shared ``real-train`` view and duplicate marks with the last run."""

    kind = "filter"
    config_type = FilterConfig
    results_type = FilterResults

    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        _, results = self.load(dataset, name)
        footprint = Footprint(
            fields=[*results.fields, score_field(name), reason_field(name)],
            tags=[pass_tag(name), reject_tag(name)],
            views=[v for v in results.views if v != TRAIN_VIEW] + view_names(name),
            brain_runs=[results.brain_key or visualization_key(name)],
            files=own_folder(plots_folder, dataset.name, name),
        )
        if list_runs(dataset, "filter") == [name]:  # the last one: shared outputs go too
            footprint.views.append(TRAIN_VIEW)
            footprint.tags.append(DUPLICATE_TAG)
            footprint.fields.append(DUPLICATE_FIELD)
        return footprint

    def inputs(self, dataset: fo.Dataset, name: str) -> list[tuple[str, str]]:
        config, _ = self.load(dataset, name)
        runs = [("embed", config.embed_run)] if config.embed_run else []
        return runs + ([("train", config.classifier_run)] if config.classifier_run else [])

    def check_name(self, name: str) -> str:
        return check_key(name)

    def execute(
        self, dataset: fo.Dataset, name: str, config: FilterConfig, *, overwrite: bool, **options
    ) -> FilterResults:
        return _filter(dataset, name, config, overwrite=overwrite, **options)


FILTER = FilterKind()


def run_filter(
    dataset: fo.Dataset | str,
    method: str,
    key: str,
    *,
    embed: str | None = None,
    level: LevelChoice = DEFAULT_LEVEL,
    params: dict[str, Any] | None = None,
    copy_threshold: float | None = None,
    size: int | None = None,
    visualize: bool = True,
    plots: bool = True,
    dedupe: bool = True,
    overwrite: bool = False,
) -> FilterResults:
    """Filter the synthetic samples of a dataset and store the run under ``key``.

    Args:
        dataset: the project dataset (or its name).
        method: a filter name (see ``brain.filters``; ``combined`` is recommended,
            ``umap_gmm`` is the study's reference).
        key: the run key ``K`` (letters, digits, ``_``): names the fields ``K_score`` and
            ``K_reason``, the tags ``K:pass`` / ``K:reject``, the views ``K-pass`` /
            ``K-reject`` and the run record; rerunning a key replaces all of them.
        embed: the embed run whose embeddings are used (default: the latest); its train run is
            the classifier of the ``confidence`` filter, and its label field (fine labels, if it
            was trained on them) is passed to filters that model subgroups. Samples it has no
            embedding of are embedded with its network (a warning says how many).
        level: how the pass level (meaning per filter, see ``brain.filters``) is chosen
            (:mod:`brain.level_choice`): ``Fixed(0.9)``; ``Fixed()``: the filter's own default
            (``umap_gmm``: the heaviest component's weight); ``PassRate(0.95)``: the level at
            which that share of the real rare val samples pass (no training);
            ``Retrain(settings)``: retrain the classifier on real train + passing synthetic
            samples per level (levels, seeds, training in ``settings``) and keep the best
            validation F1. Front ends build it with :func:`brain.level_choice.parse_level_choice`.
        params: filter parameters (e.g. ``{"random_state": 1, "gmm_components": 3}``).
        copy_threshold: the SSIM, in (0, 1], at or above which a synthetic sample copies a real
            train image (or its own source) and is rejected whatever its score (reasons
            ``near-copy``, ``copy-of-source``, ``copy-of-other-class``); ``None``: measured on
            the real rare train images (:func:`brain.copies.copy_thresholds`). A pixel distance
            below the one measured rejects too.
        size: the size policy's side for the run's image checks (image statistics,
            duplicates, the near-copy gate) and its retraining sweep; default: the dataset's.
        visualize: store the plane's points as the visualization brain run ``K_umap``.
        plots: write ``umap.png``, ``density.png`` and ``grid.png`` under
            ``<media>/filters/K/``.
        dedupe: find exact and near duplicates among the synthetic samples (pixel hash;
            embedding distance confirmed by SSIM), tag them ``duplicate`` with
            ``duplicate_of`` pointing to the first copy, and reject all but the first (reason
            ``duplicate``), so an export holds each image once.
        overwrite: replace a stored run of this key that was asked other settings (without it
            such a rerun is refused; with the same settings the run is replaced).

    Returns:
        The :class:`FilterResults` (also stored under ``filter_<key>``).

    Raises:
        InputError: for bad input (unknown method or parameter, bad key, a level outside the
            filter's range, embeddings missing where the embed run has no network to make them,
            mixed embeddings, no synthetic samples, too few real rare samples,
            degenerate data); the dataset is unchanged then.
    """
    config = FilterConfig(
        method=method,
        params=dict(params or {}),
        embed_run=embed,
        level_choice=level,
        copy_threshold=None if copy_threshold is None else float(copy_threshold),
        size=size,
        dedupe=dedupe,
    )
    return FILTER.run(
        as_dataset(dataset), key, config, overwrite=overwrite, visualize=visualize, plots=plots
    )


def _filter(
    dataset: fo.Dataset,
    key: str,
    config: FilterConfig,
    *,
    overwrite: bool,
    visualize: bool = True,
    plots: bool = True,
) -> FilterResults:
    """What :meth:`FilterKind.execute` does (see :func:`run_filter`)."""
    level, method, copy_threshold = config.level_choice, config.method, config.copy_threshold
    flt = make_filter(method, **config.params)
    check_level_choice(level, flt)
    if dataset.has_sample_field(score_field(key)) and key not in list_runs(dataset, "filter"):
        raise CurateError(
            f"field {score_field(key)!r} exists and is not a filter score; choose another key"
        )
    policy = run_size_policy(dataset, config.size)
    inputs = read.read_inputs(dataset, config.embed_run, policy)
    seed = flt.get_params().get("random_state")
    config = dataclasses.replace(
        config,
        params=_jsonable(flt.get_params()),
        seed=seed,
        embed_run=inputs.embed_run,
        field=inputs.field,
        classifier_run=inputs.classifier_run if flt.input_kind == "probability" else None,
        size=policy.size,
        pad=policy.pad,
    )
    images = read.synthetic_images(dataset, inputs)  # the near-copy gate needs them always
    if flt.uses_image_features:
        inputs.real_stats = read.image_stats(dataset, inputs.real_ids, inputs.policy)
        inputs.synthetic_stats = image_statistics(inputs.policy.fit(images))
    output = _fit_and_evaluate(flt, dataset, inputs)
    gate = near_copy_gate(dataset, inputs, images, threshold=copy_threshold)
    # after the checks of the data and the fit, before a sweep trains or anything is written
    FILTER.check_reuse(dataset, key, config, overwrite=overwrite)
    warnings = list(getattr(flt, "notes_", []))
    if int(inputs.rare.sum()) < FEW_RARE:
        warnings.append(
            f"the filter was fitted on {int(inputs.rare.sum())} real rare train samples "
            f"(fewer than {FEW_RARE}): its decisions are rough"
        )
    # copies never pass, so a retraining sweep never trains on them
    passable = np.where(gate.rejected, -np.inf, output.scores)
    calibrated = _calibrate(level, flt, dataset, inputs, passable)
    if calibrated is not None:
        warnings += getattr(calibrated, "warnings", [])
    embedded = inputs.missing.note() if inputs.missing is not None else None
    if embedded is not None:
        warnings.insert(0, embedded)
    chosen = flt.resolve_level(calibrated.level if calibrated is not None else level.level)
    passed = flt.decide_scores(output.scores, chosen)
    reasons = flt.reasons(output.scores, output.parts, chosen)
    duplicate_of = None
    if config.dedupe:
        duplicate_of = read.duplicates(inputs, images)
        passed &= duplicate_of < 0
        reasons = np.where(duplicate_of >= 0, "duplicate", reasons).astype(object)
    passed &= ~gate.rejected
    reasons = np.where(gate.rejected, gate.reasons, reasons).astype(object)

    scorecard, card_warnings = generator_scorecards(
        inputs.real, inputs.rare, inputs.synthetic, inputs.generators, passed
    )
    warnings += card_warnings + _authenticity_warnings(scorecard)
    plane = None
    if visualize or plots:
        plane = plane_points(flt, inputs.real, inputs.synthetic, output, random_state=seed)

    values = {
        score_field(key): output.scores,
        **{part_field(key, p): v for p, v in output.parts.items()},
        part_field(key, "copy_ssim"): gate.ssim,
        part_field(key, "copy_distance"): gate.distance,
        part_field(key, "copy_of"): np.array(gate.copy_of, dtype=object),
    }
    results = FilterResults(
        key=key,
        method=method,
        n_synthetic=len(inputs.synthetic_ids),
        n_duplicates=0 if duplicate_of is None else int((duplicate_of >= 0).sum()),
        level=chosen,
        default_level=float(flt.default_level_),
        threshold=float(flt.threshold(chosen)),
        score_field=score_field(key),
        reason_field=reason_field(key),
        fields=[*values, reason_field(key)],
        tags=[pass_tag(key), reject_tag(key)],
        views=[TRAIN_VIEW, *view_names(key)],
        brain_key=visualization_key(key) if visualize else None,
        embed_run=inputs.embed_run,
        field=inputs.field,
        fine_field=inputs.fine_field,
        n_real=len(inputs.real_ids),
        n_real_rare=int(inputs.rare.sum()),
        calibration=calibrated,
        scorecard=scorecard,
        copies=gate.summary(),
        warnings=warnings,
        status="writing",
    )
    reasons = _write(dataset, key, config, results, inputs, values, passed, reasons, duplicate_of)
    results.by_generator = _by_generator(inputs.generators, reasons, scorecard)
    if visualize:
        store_visualization(dataset, visualization_key(key), inputs, *plane)
    if plots:
        results.plots = plot_filter(
            plots_folder(dataset.name, key),
            flt,
            output,
            plane,
            real_rare=inputs.rare,
            passed=passed,
            level=chosen,
            reasons=reasons,
            images=images,
            title=f"{key} ({method}) at level {chosen:.3g}: samples by score",
            generators=inputs.generators,
        )
    results.status = "done"
    FILTER.store(dataset, key, config, results)
    return results


def _authenticity_warnings(scorecard: dict[str, Any]) -> list[str]:
    """A warning per generator whose passing samples sit closer to real images than real
    images sit to each other (authenticity below :data:`AUTHENTICITY_WARNING`)."""
    warnings = []
    for generator, card in scorecard.items():
        value = card.get("pass", {}).get("authenticity")
        if value is not None and value < AUTHENTICITY_WARNING:
            warnings.append(
                f"{generator}: the {card['pass']['n_synthetic']} passing samples have "
                f"authenticity {value:.2f} (below {AUTHENTICITY_WARNING}): most sit closer to a "
                "real rare train image than real images sit to each other, i.e. near-copies in "
                "the embedding space"
            )
    return warnings


def _by_generator(
    generators: list[str], reasons: np.ndarray, scorecard: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Per generator run: samples, passing samples (manual decisions included), reasons and the
    passing samples' authenticity."""
    summary = {}
    for generator, counts in count_reasons(generators, list(reasons)).items():
        summary[generator] = {
            "n": sum(counts.values()),
            "n_pass": counts.get("pass", 0) + counts.get("manual-pass", 0),
            "reasons": counts,
            "authenticity": scorecard.get(generator, {}).get("pass", {}).get("authenticity"),
        }
    return summary


def _fit_and_evaluate(flt, dataset: fo.Dataset, inputs):
    """Fit ``flt`` on the real train samples and evaluate the synthetic ones."""
    if flt.input_kind == "probability":
        run = inputs.classifier_run
        flt.fit(probabilities(dataset, run, TRAIN_VIEW, inputs.real_ids), inputs.rare)
        synthetic = probabilities(dataset, run, "synthetic", inputs.synthetic_ids)
        return FilterOutput(flt.score_samples(synthetic))
    flt.fit(inputs.real, inputs.rare, fine_labels=inputs.fine, image_features=inputs.real_stats)
    return flt.evaluate(inputs.synthetic, image_features=inputs.synthetic_stats)


def _calibrate(choice: LevelChoice, flt, dataset, inputs, scores):
    """The calibration ``choice`` asks for (``None`` for a fixed level)."""
    if isinstance(choice, PassRate):
        ids, vectors, val_rare = read.read_val(dataset, inputs)
        if flt.input_kind == "probability":
            run = inputs.classifier_run
            val_scores = flt.score_samples(read.probabilities(dataset, run, REAL_VAL, ids))
        else:
            stats = (
                read.image_stats(dataset, ids, inputs.policy)
                if inputs.real_stats is not None
                else None
            )
            val_scores = flt.score_samples(vectors, image_features=stats)
        return calibrate_pass_rate(flt, val_scores, val_rare, target=choice.target)
    if isinstance(choice, Retrain):
        return retrain_calibration(
            dataset, flt, inputs.synthetic_ids, scores, choice.settings, inputs.policy
        )
    return None


def _write(dataset, key, config, results, inputs, values, passed, reasons, duplicate_of):
    """The run's writes on the dataset: the embeddings it made for samples that had none (in
    the embed run's field), the record (first of its own, marked ``writing``), fields,
    duplicates (unless ``duplicate_of`` is ``None``), tags, reasons and views; fills in the
    counts of ``results`` and returns the reasons stored (manual decisions included)."""
    ids = inputs.synthetic_ids
    if inputs.missing is not None:  # the embed run's, whatever becomes of this run
        inputs.missing.write()
    if FILTER.exists(dataset, key):  # part fields of an older run that this one does not write
        _, old = FILTER.load(dataset, key)
        for name in old.fields:
            if name not in results.fields and dataset.has_sample_field(name):
                dataset.delete_sample_field(name)
    # the record comes first, so a run killed while writing is known and can be deleted
    FILTER.store(dataset, key, config, results)
    write.write_fields(dataset, ids, values)
    if duplicate_of is not None:
        write.tag_duplicates(dataset, ids, duplicate_of)
    counts = apply_filter_decisions(dataset, key, dict(zip(ids, passed.tolist(), strict=True)))
    reasons = manual_reasons(dataset, ids, reasons)
    write.write_fields(dataset, ids, {reason_field(key): reasons})
    views = {TRAIN_VIEW: builtin_views(dataset)[TRAIN_VIEW]}
    views[f"{key}-pass"] = dataset.match_tags(pass_tag(key))
    views[f"{key}-reject"] = dataset.match_tags(reject_tag(key))
    for name, view in views.items():
        save_view(dataset, name, view)
    results.n_pass, results.n_reject = counts["n_pass"], counts["n_reject"]
    results.n_overridden = counts["n_overridden"]
    results.reasons = dict(sorted(Counter(str(r) for r in reasons).items()))
    return reasons


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
