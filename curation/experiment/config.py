"""The experiment config: one YAML file, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from brain.copies import check_copy_threshold
from brain.errors import InputError
from brain.filter_calibration import CalibrationSettings
from brain.filters import make_filter
from brain.level_choice import LevelChoice, check_level_choice, parse_level_choice
from brain.settings import TrainSettings
from curation.errors import CurateError
from curation.experiment.cells import ARMS
from curation.names import EXPERIMENT_NAME, GENERATOR_NAME, check_name
from generators import GENERATORS

EXISTING = "existing"  # a "generator" that only selects synthetic samples already present


@dataclass
class EmbeddingConfig:
    """A network trained only to embed for the filter (instead of the real baseline's): e.g. on
    the finest labels the data has (``label_field: fine_label``), with a decaying learning
    rate. ``null`` (the default) embeds with the real baseline cell's network."""

    label_field: str | None = None
    epochs: int = 10
    schedule: str = "cosine"
    augment: bool = True


@dataclass
class GeneratorConfig:
    """One generator of the study (see ``curation.runs.generate``). ``method: existing`` uses
    synthetic samples already in the dataset whose lineage run or generator is ``name``."""

    method: str
    name: str | None = None
    n: int | None = None
    train_steps: int | None = None
    steps: int | None = None
    condition: str | None = None
    source: str | None = None
    source_match: str | None = None  # "size": only sources as large as the real rare class
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FilterConfig:
    """The filter applied to every generator's samples (see ``curation.runs.filter``); its
    level is chosen as on the command line (``level``, or ``calibrate`` with ``target``:
    :func:`brain.level_choice.parse_level_choice`)."""

    method: str = "umap_gmm"
    level: float | None = None
    calibrate: bool | str = False  # false, "val" (pass rate), "retrain" (true = "retrain")
    target: float | None = None  # with calibrate: val; null: 0.95
    calibrate_seeds: int = 1
    copy_threshold: float | None = None  # near-copy SSIM; null: measured on the real rare train
    params: dict[str, Any] = field(default_factory=dict)

    def level_choice(self, settings: CalibrationSettings | None = None) -> LevelChoice:
        """The level choice this section asks for (``settings``: the retraining sweep's).

        Raises:
            InputError: both a level and a calibration, an unknown calibration, a bad target.
        """
        return parse_level_choice(self.level, self.calibrate, self.target, settings=settings)


@dataclass
class SSIMConfig:
    """Maximum SSIM of synthetic against real training images, and the near-copy threshold."""

    enabled: bool = True
    threshold: float = 0.9


@dataclass
class LeakageConfig:
    """Near-copies of real val or test images among the synthetic samples (found in the
    embedding space, confirmed by exact SSIM >= ``threshold``) are reported and kept out of
    every training arm."""

    enabled: bool = True
    threshold: float = 0.9
    neighbours: int = 5


@dataclass
class RayConfig:
    """Run the study's trainings as Ray tasks, one device each (see
    :mod:`curation.experiment.cluster`); the section left out (the default): in this process.
    ``address``: ``local`` (or ``null``) starts a Ray of ``workers`` CPUs on this machine
    (default: all of them); ``auto`` or ``ray://HOST:10001`` joins a running cluster.
    ``retries``: how often a task whose worker died is run again."""

    address: str | None = None
    workers: int | None = None
    retries: int = 3


@dataclass
class ExperimentConfig:
    """The whole study: real, real + unfiltered, real + filtered synthetic per generator, each
    with and without augmentation, over ``seeds`` seeds. ``classifier`` holds the training
    settings of every classifier of the study (:class:`~brain.settings.TrainSettings`; its
    ``augment`` comes from ``augment`` here, per arm)."""

    dataset: str
    name: str = "exp"
    seeds: int = 5
    augment: list[bool] = field(default_factory=lambda: [False, True])
    arms: list[str] = field(default_factory=lambda: list(ARMS))
    cv: int | None = None
    classifier: TrainSettings = field(default_factory=TrainSettings)
    embedding: EmbeddingConfig | None = None
    generators: list[GeneratorConfig] = field(default_factory=list)
    filter: FilterConfig = field(default_factory=FilterConfig)
    ssim: SSIMConfig = field(default_factory=SSIMConfig)
    leakage: LeakageConfig = field(default_factory=LeakageConfig)
    ray: RayConfig | None = None
    out: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data (stored in the experiment's run record; read back by
        :func:`parse_config`, so the per-arm ``augment`` is left out of ``classifier``)."""
        data = dataclasses.asdict(self)
        del data["classifier"]["augment"]
        return data


def _build(cls, data: Any, where: str):
    if not isinstance(data, dict):
        raise CurateError(f"{where}: expected a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CurateError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
        )
    return cls(**data)


def _check(config: ExperimentConfig) -> ExperimentConfig:
    check_name(config.name, EXPERIMENT_NAME)
    if not isinstance(config.seeds, int) or config.seeds < 2:
        raise CurateError("seeds must be an integer >= 2 (paired tests need two or more)")
    if not config.augment or any(not isinstance(a, bool) for a in config.augment):
        raise CurateError("augment must be a list of true/false")
    _check_arms(config, explicit=config.arms != list(ARMS))
    names = []
    for generator in config.generators:
        if generator.method != EXISTING:
            GENERATORS.get(generator.method)  # raises listing the known methods
        generator.name = generator.name or generator.method
        check_name(generator.name, GENERATOR_NAME)
        names.append(generator.name)
        if generator.source_match not in (None, "size"):
            raise CurateError(
                f"generator {generator.name!r}: source_match must be size (or absent), got "
                f"{generator.source_match!r}"
            )
    if len(set(names)) != len(names):
        raise CurateError(f"generator names must be unique: {names}")
    config.classifier.check()

    flt = make_filter(config.filter.method)  # raises listing the known filters
    try:
        check_level_choice(config.filter.level_choice(), flt)
    except InputError as error:
        raise CurateError(f"filter: {error}") from None
    check_copy_threshold(config.filter.copy_threshold)
    if not 0 < config.ssim.threshold <= 1:
        raise CurateError(f"ssim threshold must lie in (0, 1], got {config.ssim.threshold}")
    if not 0 < config.leakage.threshold <= 1:
        raise CurateError(f"leakage threshold must lie in (0, 1], got {config.leakage.threshold}")
    if config.leakage.neighbours < 1:
        raise CurateError(f"leakage neighbours must be at least 1, got {config.leakage.neighbours}")
    if config.cv is not None and (not isinstance(config.cv, int) or config.cv < 2):
        raise CurateError(f"cv must be an integer >= 2 (folds), got {config.cv!r}")
    if config.ray is not None:
        _check_ray(config.ray)
    return config


def _check_ray(ray: RayConfig) -> None:
    if ray.address is not None and (not isinstance(ray.address, str) or not ray.address):
        raise CurateError(
            f"ray address must be local, auto or ray://HOST:PORT, got {ray.address!r}"
        )
    if ray.workers is not None and (not isinstance(ray.workers, int) or ray.workers < 1):
        raise CurateError(f"ray workers must be an integer >= 1, got {ray.workers!r}")
    if ray.workers is not None and ray.address not in (None, "local"):
        raise CurateError("ray workers sets the size of a local Ray: a cluster has its own")
    if not isinstance(ray.retries, int) or ray.retries < 0:
        raise CurateError(f"ray retries must be an integer >= 0, got {ray.retries!r}")


def _check_arms(config: ExperimentConfig, *, explicit: bool) -> None:
    """Known arms, the baseline present, and what the matched arms need (``explicit``: the
    config lists its arms; the default list simply has no generator arms without generators)."""
    if not isinstance(config.arms, list) or not config.arms:
        raise CurateError(f"arms must be a list of: {', '.join(ARMS)}")
    unknown = sorted(set(config.arms) - set(ARMS))
    if unknown:
        raise CurateError(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    if "real" not in config.arms:
        raise CurateError("arms must include real: every comparison is paired with it")
    matched = [a for a in ("random-matched", "oversampled") if a in config.arms]
    if matched and "filtered" not in config.arms:
        raise CurateError(
            f"arm(s) {', '.join(matched)} draw as many samples as the filtered arm adds: "
            "add filtered to arms"
        )
    if matched and explicit and not config.generators:
        raise CurateError(
            f"arm(s) {', '.join(matched)} match a generator's filtered view: configure a "
            "generator, or leave them out of arms"
        )


def _section(cls: type, data: Any, where: str) -> Any:
    """A section of the config: its defaults when omitted, else built from its mapping."""
    return data if isinstance(data, cls) else _build(cls, data or {}, where)


def parse_config(data: Any) -> ExperimentConfig:
    """Validate a config mapping (as read from YAML)."""
    config = _build(ExperimentConfig, data, "config")
    if isinstance(config.classifier, dict) and "augment" in config.classifier:
        raise CurateError(
            "classifier: augment is set per arm by the study's augment list, not here"
        )
    config.classifier = _section(TrainSettings, config.classifier, "classifier")
    config.filter = _section(FilterConfig, config.filter, "filter")
    config.ssim = _section(SSIMConfig, config.ssim, "ssim")
    config.leakage = _section(LeakageConfig, config.leakage, "leakage")
    if config.ray is not None:
        config.ray = _section(RayConfig, config.ray, "ray")
    if config.embedding is not None:
        config.embedding = _section(EmbeddingConfig, config.embedding, "embedding")
        if config.embedding.epochs < 1:
            raise CurateError(f"embedding epochs must be at least 1, got {config.embedding.epochs}")
    if not isinstance(config.generators, list):
        raise CurateError("generators: expected a list")
    config.generators = [
        _build(GeneratorConfig, g, f"generators[{i}]") for i, g in enumerate(config.generators)
    ]
    return _check(config)


def with_ray(
    config: ExperimentConfig, *, address: str | None = None, workers: int | None = None
) -> ExperimentConfig:
    """``config`` with its trainings on Ray: its own ``ray`` section (or the defaults, a local
    Ray) with ``address`` and ``workers`` where given.

    Raises:
        CurateError: ``workers`` for a cluster (see :class:`RayConfig`).
    """
    ray = config.ray or RayConfig()
    if address is not None:  # a cluster has its own size
        ray = dataclasses.replace(ray, address=address, workers=None)
    if workers is not None:
        ray = dataclasses.replace(ray, workers=workers)
    _check_ray(ray)
    return dataclasses.replace(config, ray=ray)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file."""
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise CurateError(f"{path}: invalid YAML: {' '.join(str(error).split())}") from None
    return parse_config(data)
