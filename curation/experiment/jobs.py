"""The trainings of a study: one train run each (a cell, one seed of a per-seed cell, or the
embedding network), what it trains on, and whether a stored run already holds it.

A job is plain data, so it can be sent to another process to be trained
(:mod:`curation.experiment.cluster`).
"""

from __future__ import annotations

import dataclasses

import fiftyone as fo

from brain.settings import TrainSettings
from curation.datasets import builtin_views
from curation.names import REAL_TRAIN
from curation.runs.train.fit import TRAIN, FittedRun, fit_classifier
from curation.runs.train.records import TrainConfig
from curation.schema import LABEL_FIELD, run_size_policy


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One train run of the study: its settings and inputs, and how the log names it."""

    run: str
    settings: TrainSettings
    seeds: int
    seed: int = 0
    with_view: str | None = None
    oversample: int = 0
    label_field: str = LABEL_FIELD
    what: str = ""

    def fit(
        self, dataset: fo.Dataset, *, num_threads: int | None = None, progress: bool = True
    ) -> FittedRun:
        """Train the run (its checkpoints written; nothing stored on ``dataset``)."""
        return fit_classifier(
            dataset,
            self.run,
            self.config,
            overwrite=True,  # the study owns its run names: a changed cell is trained again
            num_threads=num_threads,
            progress=progress,
        )

    @property
    def config(self) -> TrainConfig:
        """The run's config, built as every train run's is (:meth:`TrainConfig.build`)."""
        return TrainConfig.build(
            self.settings,
            seeds=self.seeds,
            seed=self.seed,
            with_view=self.with_view,
            oversample=self.oversample,
            label_field=self.label_field,
        )


def finished(dataset: fo.Dataset, job: TrainJob) -> bool:
    """Whether train run ``job.run`` used these settings and the same amount of training data
    (a changed filter outcome changes the synthetic view, so the cell is trained again)."""
    if not TRAIN.exists(dataset, job.run):
        return False
    stored, results = TRAIN.load(dataset, job.run)
    n_train = len(builtin_views(dataset)[REAL_TRAIN])
    if job.with_view is not None:
        n_train += len(dataset.load_saved_view(job.with_view))
    policy = run_size_policy(dataset, job.settings.size, job.settings.pad)
    asked = dataclasses.replace(job.config, size=policy.size, pad=policy.pad)
    return (
        bool(results.per_seed)
        and results.n_train_available == n_train
        and TRAIN.comparable(stored) == TRAIN.comparable(asked)  # the key-reuse comparison
    )
