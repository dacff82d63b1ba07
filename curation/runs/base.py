"""What every kind of run shares: typed records and the method that knows what a run writes.

A run is config -> method -> results (as FiftyOne Brain's runs are): the config says what was
asked, the method does the work and knows everything it writes on the dataset and on disk (its
:class:`~curation.runs.footprint.Footprint`), and the results say what came out. Configs and
results are dataclasses stored as JSON under the key ``<kind>_<name>``
(:mod:`curation.runs.records`); :meth:`Record.from_record` reads records written by older
versions too (missing keys take their defaults, unknown keys are kept aside).
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import fiftyone as fo

from brain.registry import Registry
from curation.errors import CurateError
from curation.names import check_run_name
from curation.runs.footprint import Footprint
from curation.runs.records import has_run, load_run, remove_record, store_run

R = TypeVar("R", bound="Record")

RESOLVED = {"compared": False}
"""Field metadata (``field(..., metadata=RESOLVED)``) of a config value that the run derives
or that says how, not what, it ran (the data's classes and digests, the device): a rerun under
the same key may differ in it."""


class Record:
    """A dataclass stored as a run's config or results (fields are JSON values)."""

    @classmethod
    def from_record(cls: type[R], data: Mapping[str, Any]) -> R:
        """The record ``data`` as this type (keys it does not know are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_record(self) -> dict[str, Any]:
        """The record as a JSON-able dict (the stored keys)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def asked(self) -> dict[str, Any]:
        """The values that say what the run was asked (every field not marked
        :data:`RESOLVED`), as JSON values: what a rerun under the same key must repeat."""
        record = self.to_record()
        compared = [f.name for f in dataclasses.fields(self) if f.metadata.get("compared", True)]  # type: ignore[arg-type]
        return json.loads(json.dumps({name: record[name] for name in compared}))


class RunKind(ABC):
    """One kind of run: its record types, and what a run of it writes (so it can be removed).

    Subclasses set :attr:`kind`, :attr:`config_type` and :attr:`results_type`, implement
    :meth:`footprint` and, for runs built on other runs, :meth:`inputs`; they are registered in
    :data:`KINDS`.
    """

    kind: ClassVar[str]
    config_type: ClassVar[type[Record]]
    results_type: ClassVar[type[Record]]

    def run(
        self,
        dataset: fo.Dataset,
        name: str,
        config: Record,
        *,
        overwrite: bool = False,
        **options: Any,
    ) -> Record:
        """Make run ``name`` as ``config`` asks and store it under ``<kind>_<name>``; returns
        its results. The name and the config's type are checked here; the kind's
        :meth:`execute` resolves what the config leaves to the dataset (its size policy, its
        latest runs), applies the key-reuse rule (:meth:`check_reuse`) before it writes, and
        does the work. ``options`` say how, not what (threads, progress, batch sizes).

        Raises:
            CurateError: a bad name, a name reused with other settings (without
                ``overwrite``), or bad input found by the kind; nothing is written then.
        """
        self.check_name(name)
        if not isinstance(config, self.config_type):
            raise TypeError(f"{self.kind} runs take a {self.config_type.__name__}")
        return self.execute(dataset, name, config, overwrite=overwrite, **options)

    def check_name(self, name: str) -> str:
        """``name`` if it is valid for a run of this kind (default: a run name).

        Raises:
            CurateError: an invalid name.
        """
        return check_run_name(name)

    def execute(
        self, dataset: fo.Dataset, name: str, config: Record, *, overwrite: bool, **options: Any
    ) -> Record:
        """The kind's work for :meth:`run`. Kinds made elsewhere (the study) do not have it."""
        raise NotImplementedError(f"{self.kind} runs are not made through RunKind.run")

    def store(self, dataset: fo.Dataset, name: str, config: Record, results: Record | None) -> str:
        """Store (or replace) the run's record; returns its key."""
        payload = None if results is None else results.to_record()
        return store_run(dataset, self.kind, name, config.to_record(), payload)

    def load(self, dataset: fo.Dataset, name: str) -> tuple[Any, Any]:
        """``(config, results)`` of a stored run, typed.

        Raises:
            CurateError: no such run.
        """
        config, results = load_run(dataset, self.kind, name)
        return self.config_type.from_record(config), self.results_type.from_record(results)

    def exists(self, dataset: fo.Dataset, name: str) -> bool:
        """Whether a run of this kind called ``name`` is stored."""
        return has_run(dataset, self.kind, name)

    def comparable(self, config: Record) -> dict[str, Any]:
        """What the key-reuse check compares of ``config`` (default: :meth:`Record.asked`)."""
        return config.asked()

    def check_reuse(
        self, dataset: fo.Dataset, name: str, config: Record, *, overwrite: bool = False
    ) -> bool:
        """Refuse to reuse the name of a stored run that was asked other settings, unless
        ``overwrite``; called before a run reads or writes anything else. A rerun with the same
        settings replaces (or resumes) the stored run.

        Returns:
            Whether a stored run of that name differs and is to be replaced (``overwrite``).

        Raises:
            CurateError: the run exists with other settings, naming the first that differs.
        """
        if not self.exists(dataset, name):
            return False
        stored, _ = self.load(dataset, name)
        before, now = self.comparable(stored), self.comparable(config)
        changed = [key for key in now if before.get(key) != now[key]]
        if changed and not overwrite:
            key = changed[0]
            what = _difference(key, before.get(key), now[key])
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise CurateError(
                f"{self.kind} run {name!r} exists with another {what}{more}; pass `overwrite` "
                "to replace it, use another run name or delete the run",
                params=("overwrite",),
            )
        return bool(changed)

    @abstractmethod
    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        """Everything the stored run ``name`` wrote (also for a run that was killed midway)."""

    def inputs(self, dataset: fo.Dataset, name: str) -> list[tuple[str, str]]:
        """``(kind, name)`` of the runs that the stored run ``name`` was built on (an embed
        run's train run, ...): deleting one of them leaves it an orphan. None by default."""
        return []

    def delete(self, dataset: fo.Dataset, name: str) -> Footprint:
        """Remove what run ``name`` wrote, then its record; returns what was there."""
        footprint = self.footprint(dataset, name)
        present = footprint.present(dataset)
        footprint.remove(dataset)
        remove_record(dataset, self.kind, name)
        return present


def _difference(key: str, before: Any, now: Any) -> str:
    """``key`` and its stored value, for the key-reuse error (the keys of a dict that differ)."""
    if isinstance(before, dict) and isinstance(now, dict):
        changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
        return f"{key} ({', '.join(f'{k}: {before.get(k)!r}' for k in changed)})"
    return f"{key} ({before!r}, asked {now!r})"


KINDS: Registry[RunKind] = Registry("run kind")
"""Every kind of run by name (``train``, ``embed``, ``generate``, ``filter``, ``ssim``,
``experiment``); see :mod:`curation.runs`."""


def register(cls: type[RunKind]) -> type[RunKind]:
    """Class decorator: register an instance of ``cls`` under its :attr:`RunKind.kind`."""
    KINDS.register(cls.kind)(cls())
    return cls
