"""Run records stored on a dataset under a key, through FiftyOne's custom runs API.

Every synthcurate computation (classifier training, embedding, filtering, generation, SSIM,
experiments) keeps ``config`` (what was asked: method, parameters, seeds, inputs) and ``results``
(what came out: metrics, counts, paths) as JSON under ``<kind>_<name>``, so runs are listed by
``curate info`` and ``curate runs``, reloaded, compared and deleted like FiftyOne's own brain
runs. This module is the storage only; :mod:`curation.runs` knows what each kind writes.
"""

from __future__ import annotations

from typing import Any

import fiftyone as fo

from curation.errors import CurateError
from curation.names import RUN_KINDS, check_run_name, run_key


def store_run(
    dataset: fo.Dataset,
    kind: str,
    name: str,
    config: dict[str, Any],
    results: dict[str, Any] | None = None,
) -> str:
    """Store (or replace) run ``name`` of ``kind`` with its config and results; returns the key.

    Raises:
        CurateError: an invalid run name (see :mod:`curation.names`).
    """
    key = run_key(kind, check_run_name(name))
    run_config = dataset.init_run(synthcurate_kind=kind, synthcurate_name=name, **config)
    if key in dataset.list_runs():
        dataset.delete_run(key)
    dataset.register_run(key, run_config)
    if results is not None:
        # one attribute, so result names never clash with RunResults' own arguments
        dataset.save_run_results(key, dataset.init_run_results(key, record=results))
    return key


def has_run(dataset: fo.Dataset, kind: str, name: str) -> bool:
    """Whether run ``name`` of ``kind`` is stored on ``dataset``."""
    return run_key(kind, name) in dataset.list_runs()


def load_run(dataset: fo.Dataset, kind: str, name: str) -> tuple[dict, dict]:
    """``(config, results)`` of a stored run.

    Raises:
        CurateError: if there is no such run (listing the runs of that kind).
    """
    key = run_key(kind, name)
    if key not in dataset.list_runs():
        known = ", ".join(list_runs(dataset, kind)) or "none"
        raise CurateError(f"no {kind} run {name!r} on dataset {dataset.name!r}; known: {known}")
    config = dataset.get_run_info(key).config.serialize()
    results = dataset.load_run_results(key, cache=False)
    payload = dict(results.serialize().get("record") or {}) if results is not None else {}
    for private in ("cls", "type", "synthcurate_kind", "synthcurate_name"):
        config.pop(private, None)
    if config.get("method") is None:  # FiftyOne's own slot, unused unless the run has a method
        config.pop("method", None)
    return config, payload


def list_keys(dataset: fo.Dataset, kind: str | None = None) -> list[tuple[str, str, str]]:
    """``(key, kind, name)`` of the synthcurate runs on ``dataset`` (of one ``kind`` if given),
    sorted by key."""
    rows = []
    for key in dataset.list_runs():
        config = dataset.get_run_info(key).config
        found = getattr(config, "synthcurate_kind", None)
        if found is not None and (kind is None or found == kind):
            rows.append((key, found, config.synthcurate_name))
    return sorted(rows)


def list_runs(dataset: fo.Dataset, kind: str | None = None) -> list[str]:
    """Names of the synthcurate runs on ``dataset`` (of one ``kind`` if given)."""
    return sorted(name for _, _, name in list_keys(dataset, kind))


def latest_run(dataset: fo.Dataset, kind: str) -> str | None:
    """The name of the most recently stored run of ``kind``, if any."""
    names = list_runs(dataset, kind)
    if not names:
        return None
    return max(names, key=lambda n: run_timestamp(dataset, kind, n))


def run_identity(dataset: fo.Dataset, key: str) -> tuple[str, str]:
    """``(kind, name)`` of the synthcurate run stored under ``key``.

    Raises:
        CurateError: no synthcurate run has that key (listing the keys there are).
    """
    config = dataset.get_run_info(key).config if key in dataset.list_runs() else None
    if getattr(config, "synthcurate_kind", None) is None:
        known = ", ".join(sorted(run_key(k, n) for k in RUN_KINDS for n in list_runs(dataset, k)))
        raise CurateError(
            f"no synthcurate run {key!r} on dataset {dataset.name!r}; runs: {known or 'none'}"
        )
    return config.synthcurate_kind, config.synthcurate_name


def run_timestamp(dataset: fo.Dataset, kind: str, name: str):
    """When run ``name`` of ``kind`` was last stored (a ``datetime``)."""
    return dataset.get_run_info(run_key(kind, name)).timestamp


def remove_record(dataset: fo.Dataset, kind: str, name: str) -> None:
    """Delete the record of a stored run (not what the run wrote: see :mod:`curation.runs`)."""
    load_run(dataset, kind, name)  # raises a clear error if absent
    dataset.delete_run(run_key(kind, name))
