"""The experiment config: one YAML file, validated strictly (unknown keys are errors)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curation.errors import CurateError

EXISTING = "existing"  # a "generator" that only selects synthetic samples already present
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,40}$")


@dataclass
class ClassifierConfig:
    """How every classifier of the study is trained (see ``brain.classifier.train_classifier``)."""

    epochs: int = 50
    arch: str = "resnet18"
    batch_size: int = 32
    lr: float = 1e-3
    size: int | None = None
    class_weighted: bool = False
    subset: int | None = None
    patience: int | None = None
    select: str = "f1"
    schedule: str = "constant"


@dataclass
class GeneratorConfig:
    """One generator of the study (see ``generators.api.generate``). ``method: existing`` uses
    synthetic samples already in the dataset whose lineage run or generator is ``name``."""

    method: str
    name: str | None = None
    n: int | None = None
    train_steps: int | None = None
    steps: int | None = None
    condition: str | None = None
    source: str | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FilterConfig:
    """The filter applied to every generator's samples (see ``brain.filtering``)."""

    method: str = "umap_gmm"
    level: float | None = None
    calibrate: bool = False
    calibrate_seeds: int = 1
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class SSIMConfig:
    """Maximum SSIM of synthetic against real training images, and the near-copy threshold."""

    enabled: bool = True
    threshold: float = 0.9


@dataclass
class ExperimentConfig:
    """The whole study: real, real + unfiltered, real + filtered synthetic per generator, each
    with and without augmentation, over ``seeds`` seeds."""

    dataset: str
    name: str = "exp"
    seeds: int = 5
    augment: list[bool] = field(default_factory=lambda: [False, True])
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    generators: list[GeneratorConfig] = field(default_factory=list)
    filter: FilterConfig = field(default_factory=FilterConfig)
    ssim: SSIMConfig = field(default_factory=SSIMConfig)
    out: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The config as plain data (stored in the experiment's run record)."""
        return dataclasses.asdict(self)


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
    from generators import GENERATORS

    if not _NAME.match(config.name):
        raise CurateError(f"experiment name {config.name!r}: letters, digits, '_' or '-', max 41")
    if not isinstance(config.seeds, int) or config.seeds < 2:
        raise CurateError("seeds must be an integer >= 2 (paired tests need two or more)")
    if not config.augment or any(not isinstance(a, bool) for a in config.augment):
        raise CurateError("augment must be a list of true/false")
    names = []
    for generator in config.generators:
        if generator.method != EXISTING:
            GENERATORS.get(generator.method)  # raises listing the known methods
        generator.name = generator.name or generator.method
        if not _NAME.match(generator.name):
            raise CurateError(f"generator name {generator.name!r}: letters, digits, '_' or '-'")
        names.append(generator.name)
    if len(set(names)) != len(names):
        raise CurateError(f"generator names must be unique: {names}")
    from brain.classifier import check_training_options

    c = config.classifier
    check_training_options(
        seeds=config.seeds,
        epochs=c.epochs,
        batch_size=c.batch_size,
        lr=c.lr,
        subset=c.subset,
        select=c.select,
        schedule=c.schedule,
        arch=c.arch,
    )
    from brain.filters import FILTERS

    FILTERS.get(config.filter.method)  # raises listing the known filters
    if config.filter.level is not None and not 0 < config.filter.level < 1:
        raise CurateError(f"filter level must lie in (0, 1), got {config.filter.level}")
    if config.filter.level is not None and config.filter.calibrate:
        raise CurateError("filter: give level or calibrate, not both")
    if not 0 < config.ssim.threshold <= 1:
        raise CurateError(f"ssim threshold must lie in (0, 1], got {config.ssim.threshold}")
    return config


def parse_config(data: Any) -> ExperimentConfig:
    """Validate a config mapping (as read from YAML)."""
    config = _build(ExperimentConfig, data, "config")
    config.classifier = _build(ClassifierConfig, config.classifier or {}, "classifier")
    config.filter = _build(FilterConfig, config.filter or {}, "filter")
    config.ssim = _build(SSIMConfig, config.ssim or {}, "ssim")
    if not isinstance(config.generators, list):
        raise CurateError("generators: expected a list")
    config.generators = [
        _build(GeneratorConfig, g, f"generators[{i}]") for i, g in enumerate(config.generators)
    ]
    return _check(config)


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
