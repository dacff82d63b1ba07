"""The experiment run: a study's record and everything the study wrote.

A study ``E`` stores ``experiment_E`` (its config as given, and :class:`ExperimentResults`). It
owns the runs it made (generators, the embedding network, every cell's train runs, the
embeddings, the filter, the SSIM analysis), its saved views, the leakage marks, its report
folder and, when cross-validated, the fold datasets; deleting the run removes all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fiftyone as fo

from curation.experiment import cells as names
from curation.experiment.config import EXISTING, parse_config
from curation.experiment.cv import fold_dataset_name
from curation.experiment.leakage import LEAK_FIELD, LEAK_TAG
from curation.media import out_folder_problem
from curation.runs.base import Record, RunKind, register
from curation.runs.footprint import Footprint


@dataclass
class ExperimentRecord(Record):
    """The study's config as plain data (see
    :class:`~curation.experiment.config.ExperimentConfig`)."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, data):
        return cls(dict(data))

    def to_record(self) -> dict[str, Any]:
        return dict(self.values)


@dataclass
class ExperimentResults(Record):
    """What a study gave (stored as ``results``): the tables, comparisons and verdicts; with a
    fixed split the filter counts and the leakage check, with ``cv`` the fold reports; ``out``:
    the report folder."""

    tables: list[dict[str, Any]] = field(default_factory=list)
    filter_counts: dict[str, Any] = field(default_factory=dict)
    comparisons: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    leakage: dict[str, Any] = field(default_factory=dict)
    fold_reports: list[str] = field(default_factory=list)
    out: str | None = None


@register
class ExperimentKind(RunKind):
    """Experiment runs: the runs, views, leakage marks, report folder and fold datasets of a
    study."""

    kind = "experiment"
    config_type = ExperimentRecord
    results_type = ExperimentResults

    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        stored, results = self.load(dataset, name)
        config = parse_config(stored.values)
        footprint = study_footprint(config)
        if results.out and out_folder_problem(Path(results.out), dataset) is None:
            footprint.files.append(results.out)  # never the current directory, sources, ...
        return footprint

    def inputs(self, dataset: fo.Dataset, name: str) -> list[tuple[str, str]]:
        """The runs the study made: its tables and verdicts rest on them."""
        stored, _ = self.load(dataset, name)
        return study_footprint(parse_config(stored.values)).runs


EXPERIMENT = ExperimentKind()


def study_footprint(config) -> Footprint:
    """What the study ``config`` writes (its own record aside)."""
    if config.cv:
        return Footprint(
            datasets=[fold_dataset_name(config.dataset, f, config.cv) for f in range(config.cv)]
        )
    runs: list[tuple[str, str]] = []
    views: list[str] = []
    for gen in config.generators:
        if gen.method != EXISTING:
            runs.append(("generate", gen.name))
        views += [names.sources_view_name(config.name, gen.name)]
        views += [names.synthetic_view_name(config.name, gen.name, f) for f in (False, True)]
        views += [names.random_view_name(config.name, gen.name, s) for s in range(config.seeds)]
    cells = names.study_cells(
        config.name, [g.name for g in config.generators], config.augment, names.ARMS
    )
    runs += [("train", run) for cell in cells for run in names.cell_runs(cell, config.seeds)]
    if config.embedding is not None:
        runs.append(("train", names.embedder_run(config.name)))
    runs += [
        ("embed", names.embed_name(config.name)),
        ("filter", names.filter_key(config.name)),
        ("ssim", config.name),
    ]
    return Footprint(views=views, runs=runs, fields=[LEAK_FIELD], tags=[LEAK_TAG])
