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
from dataclasses import dataclass
from typing import Any

import fiftyone as fo

from curation.runs.footprint import Footprint
from curation.runs.records import list_keys, list_runs, run_identity, run_key, run_timestamp

_KIND_MODULES = (
    "curation.runs.train",
    "curation.runs.embed",
    "curation.runs.generate",
    "curation.runs.filter",
    "curation.runs.ssim",
    "curation.experiment.record",
)


def kinds():
    """The registry of run kinds (every kind's module imported)."""
    import importlib

    for module in _KIND_MODULES:
        importlib.import_module(module)
    from curation.runs.base import KINDS

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
    from curation.datasets import as_dataset

    return list_keys(as_dataset(dataset), kind)


def show_run(dataset: fo.Dataset | str, key: str) -> RunInfo:
    """The stored run ``key`` (e.g. ``filter_K``) with what it wrote that is still there.

    Raises:
        CurateError: no synthcurate run has that key.
    """
    from curation.datasets import as_dataset
    from curation.runs.records import load_run

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
    from curation.datasets import as_dataset
    from curation.errors import CurateError

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
    return removed


def _merge(into: Footprint, part: Footprint) -> None:
    for name in dataclasses.fields(Footprint):
        getattr(into, name.name).extend(getattr(part, name.name))


__all__ = [
    "Footprint",
    "RunInfo",
    "delete_run",
    "dependents",
    "kinds",
    "list_run_keys",
    "show_run",
]
