"""The runs layer: every synthcurate computation on a dataset as config -> run -> results.

Each kind of run (``train``, ``embed``, ``generate``, ``filter``, ``ssim``, ``experiment``) is a
:class:`~curation.runs.base.RunKind` in :data:`~curation.runs.base.KINDS`: it stores its config
and results under ``<kind>_<name>`` with FiftyOne's runs API and knows the fields, tags, views,
brain runs, evaluations, samples and files it writes (its
:class:`~curation.runs.footprint.Footprint`), so that :func:`delete_run` leaves nothing behind.
The functions that make runs live in the kind's module
(:func:`curation.runs.train.train_classifier`, :func:`curation.runs.embed.compute_embeddings`,
:func:`curation.runs.generate.generate`, :func:`curation.runs.filter.run_filter`,
:func:`curation.runs.ssim.compute_max_ssim`, :func:`curation.experiment.run_experiment`).
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
from dataclasses import dataclass
from typing import Any

import fiftyone as fo

from curation.datasets import as_dataset, open_dataset
from curation.errors import CurateError
from curation.leftovers import clean_leftovers
from curation.media import media_root
from curation.names import KIND_MODULES
from curation.runs.base import KINDS
from curation.runs.footprint import Footprint
from curation.runs.records import (
    list_keys,
    list_runs,
    load_run,
    run_identity,
    run_key,
    run_timestamp,
)


def kinds():
    """The registry of run kinds (every kind's module in :data:`curation.names.KIND_MODULES`
    imported)."""
    for module in KIND_MODULES.values():
        importlib.import_module(module)
    return KINDS


@dataclass
class RunInfo:
    """One stored run: its key, kind, name, when it was stored, its config and results as
    stored, and what it wrote that is still there."""

    key: str
    kind: str
    name: str
    timestamp: str
    config: dict[str, Any]
    results: dict[str, Any]
    footprint: Footprint

    def as_dict(self) -> dict[str, Any]:
        """The run as plain data (``curate runs show --json``)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "name": self.name,
            "timestamp": self.timestamp,
            "config": self.config,
            "results": self.results,
            "writes": self.footprint.as_dict(),
        }


def list_run_keys(dataset: fo.Dataset | str, kind: str | None = None) -> list[tuple[str, str, str]]:
    """``(key, kind, name)`` of every synthcurate run on ``dataset`` (of one ``kind`` if given),
    sorted by key."""
    return list_keys(as_dataset(dataset), kind)


def show_run(dataset: fo.Dataset | str, key: str) -> RunInfo:
    """The stored run ``key`` (e.g. ``filter_K``) with what it wrote that is still there.

    Raises:
        CurateError: no synthcurate run has that key.
    """
    dataset = as_dataset(dataset)
    kind, name = run_identity(dataset, key)
    config, results = load_run(dataset, kind, name)
    footprint = kinds().get(kind).footprint(dataset, name).present(dataset)
    stamp = run_timestamp(dataset, kind, name)
    return RunInfo(key, kind, name, str(stamp), config, results, footprint)


def delete_run(dataset: fo.Dataset | str, key: str, *, with_dependents: bool = False) -> Footprint:
    """Delete run ``key`` (e.g. ``filter_K``) and everything it wrote: fields, tags, saved
    views, brain runs, evaluations, samples, files, the runs it owns (a study's train runs,
    ...) and the datasets it made; returns what was removed (owned runs' and dependents' writes
    included, those runs in ``runs``).

    A run that other runs were built on (the train run behind an embed run, the embed run behind
    a filter run, a run a study made) is deleted only with ``with_dependents``, which
    deletes those runs first (see :func:`dependents`).

    Raises:
        CurateError: no synthcurate run has that key, or others depend on it (naming them);
            nothing is deleted then.
    """
    dataset = as_dataset(dataset)
    kind, name = run_identity(dataset, key)
    found = dependents(dataset, kind, name)
    if found and not with_dependents:
        keys = ", ".join(run_key(k, n) for k, n in found)
        raise CurateError(
            f"{key} is an input of {keys}: delete {'it' if len(found) == 1 else 'them'} first, "
            "or pass `with_dependents` to delete them too",
            params=("with_dependents",),
        )
    removed = Footprint()
    for run in [*reversed(found), (kind, name)]:  # the last found rest on the earlier ones
        if run[1] in list_runs(dataset, run[0]):  # not already gone with a study
            _merge(removed, _delete(dataset, *run))
    removed.runs += [run for run in found if run not in removed.runs]
    return removed


def dependents(dataset: fo.Dataset, kind: str, name: str) -> list[tuple[str, str]]:
    """``(kind, name)`` of the stored runs built on run ``name`` of ``kind``, directly or through
    each other, in the order found (each one's inputs before it), leaving out the runs deleted
    with it (those it owns)."""
    registry = kinds()
    doomed = _owned(dataset, kind, name)
    stored = [(k, n) for _, k, n in list_keys(dataset) if (k, n) not in doomed]
    inputs = {run: set(registry.get(run[0]).inputs(dataset, run[1])) for run in stored}
    found: list[tuple[str, str]] = []
    reached = set(doomed)
    while True:
        more = [run for run in stored if run not in reached and inputs[run] & reached]
        if not more:
            return found
        found += more
        reached.update(more)


def _owned(dataset: fo.Dataset, kind: str, name: str) -> set[tuple[str, str]]:
    """Run ``name`` of ``kind`` and the stored runs it owns, at any depth."""
    owned = {(kind, name)}
    for owned_kind, owned_name in kinds().get(kind).footprint(dataset, name).runs:
        if owned_name in list_runs(dataset, owned_kind):
            owned |= _owned(dataset, owned_kind, owned_name)
    return owned


def _delete(dataset: fo.Dataset, kind: str, name: str) -> Footprint:
    registry = kinds()
    method = registry.get(kind)
    footprint = method.footprint(dataset, name)
    removed = Footprint()
    for owned_kind, owned_name in footprint.runs:  # e.g. a study's runs, before its views
        if owned_name in list_runs(dataset, owned_kind):
            _merge(removed, _delete(dataset, owned_kind, owned_name))
    _merge(removed, method.delete(dataset, name))
    for made in footprint.datasets:  # e.g. a study's fold datasets
        if fo.dataset_exists(made):
            delete_project(made)
    return removed


def delete_project(name: str) -> None:
    """Delete project dataset ``name`` and everything synthcurate wrote for it: every run
    through its footprint (similarity indexes on a server or in a file outside the media folder
    included, where their store answers), the leftovers of its killed runs, its
    ``<name>-parents`` dataset of whole images (see :mod:`curation.segment`), the dataset, and
    its media folder. Source images are kept.

    Raises:
        CurateError: no dataset has that name.
    """
    dataset = open_dataset(name)
    for kind, run in sorted(
        ((k, n) for _, k, n in list_keys(dataset)),
        key=lambda run: run[0] != "experiment",  # studies first: they own runs
    ):
        if run in list_runs(dataset, kind):  # not already gone with a study
            _delete(dataset, kind, run)
    clean_leftovers(name)
    if fo.dataset_exists(f"{name}-parents"):
        fo.load_dataset(f"{name}-parents").delete()
    dataset.delete()
    media = media_root(name)
    if media.is_dir():
        shutil.rmtree(media)


def _merge(into: Footprint, part: Footprint) -> None:
    for name in dataclasses.fields(Footprint):
        getattr(into, name.name).extend(getattr(part, name.name))


__all__ = [
    "Footprint",
    "RunInfo",
    "delete_project",
    "delete_run",
    "dependents",
    "kinds",
    "list_run_keys",
    "show_run",
]
