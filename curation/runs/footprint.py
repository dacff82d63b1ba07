"""What a run left on a dataset and on disk, and how to remove it."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fiftyone as fo

from curation.errors import CurateError
from curation.runs.similarity import BACKENDS, quiet_clients


@dataclass
class Footprint:
    """Everything one run wrote, by name: removing it leaves the dataset as if the run had not
    been made (its record is removed separately, see :mod:`curation.runs`).

    Attributes:
        fields: sample fields it added.
        tags: sample tags it set.
        views: saved views it saved.
        brain_runs: FiftyOne brain runs (visualizations, similarity indexes) it stored.
        evaluations: FiftyOne evaluations it stored.
        samples: ids of the samples it added.
        files: files and folders it wrote (folders are removed with their contents).
        runs: ``(kind, name)`` of other synthcurate runs it made and owns (their footprints
            are removed with it).
        datasets: whole datasets it made (e.g. the folds of a cross-validated study).
    """

    fields: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    brain_runs: list[str] = field(default_factory=list)
    evaluations: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    runs: list[tuple[str, str]] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)

    def present(self, dataset: fo.Dataset) -> Footprint:
        """The part of the footprint that exists now (what :meth:`remove` would remove)."""
        schema = dataset.get_field_schema(flat=True)
        tags = set(dataset.distinct("tags"))
        views = set(dataset.list_saved_views())
        brain_runs, evaluations = set(dataset.list_brain_runs()), set(dataset.list_evaluations())
        samples = set(dataset.select(self.samples).values("id")) if self.samples else set()
        return Footprint(
            fields=[f for f in dict.fromkeys(self.fields) if f in schema],
            tags=[t for t in dict.fromkeys(self.tags) if t in tags],
            views=[v for v in dict.fromkeys(self.views) if v in views],
            brain_runs=[b for b in dict.fromkeys(self.brain_runs) if b in brain_runs],
            evaluations=[e for e in dict.fromkeys(self.evaluations) if e in evaluations],
            samples=[s for s in dict.fromkeys(self.samples) if s in samples],
            files=[p for p in dict.fromkeys(self.files) if Path(p).exists()],
            runs=list(dict.fromkeys(self.runs)),
            datasets=[d for d in dict.fromkeys(self.datasets) if fo.dataset_exists(d)],
        )

    def remove(self, dataset: fo.Dataset) -> None:
        """Remove what exists of the footprint from ``dataset`` and the disk (the owned runs
        and datasets are removed by :func:`curation.runs.delete_run`, which calls this)."""
        present = self.present(dataset)
        for key in present.brain_runs:
            cleanup_brain_run(dataset, key)
        for key in present.evaluations:
            dataset.delete_evaluation(key)
        for name in present.views:
            dataset.delete_saved_view(name)
        if present.tags:
            dataset.untag_samples(present.tags)
        if present.samples:
            dataset.delete_samples(present.samples)
        for name in present.fields:
            if dataset.has_sample_field(name):
                dataset.delete_sample_field(name)
        for path in present.files:
            target = Path(path)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def as_dict(self) -> dict[str, Any]:
        """The footprint as plain data (for ``curate runs show --json``)."""
        return {
            "fields": self.fields,
            "tags": self.tags,
            "views": self.views,
            "brain_runs": self.brain_runs,
            "evaluations": self.evaluations,
            "samples": len(self.samples),
            "files": self.files,
            "runs": [f"{kind}_{name}" for kind, name in self.runs],
            "datasets": self.datasets,
        }


def own_folder(folder_of: Callable[[str, str], Path], dataset_name: str, name: str) -> list[str]:
    """``[folder_of(dataset_name, name)]`` as text for a footprint's ``files``, or ``[]`` where
    that helper refuses the folder as not strictly inside its runs root (a run stored under an
    empty name by an older version: deleting it removes its record and fields, never the
    folder shared by every run)."""
    try:
        return [str(folder_of(dataset_name, name))]
    except CurateError:
        return []


def cleanup_brain_run(dataset: fo.Dataset, key: str, **load_options: Any) -> None:
    """Delete brain run ``key`` (if present) and the external index behind it (a LanceDB
    table, a Milvus or Qdrant collection) where ``load_options`` (its URL) reach it and it is
    this dataset's own (see :meth:`~curation.runs.similarity.SimilarityBackend.owns_index`)."""
    if key not in dataset.list_brain_runs():
        return
    config = dataset.get_brain_info(key).config
    method = getattr(config, "method", None)
    if method in BACKENDS and BACKENDS.get(method).owns_index(dataset.name, key, config):
        # an unreachable external index: forget our record of it anyway
        with contextlib.suppress(Exception), quiet_clients():
            dataset.load_brain_results(key, cache=False, **load_options).cleanup()
    dataset.delete_brain_run(key)
