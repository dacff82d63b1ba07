"""Samples added after an embed run, embedded with that run's own network.

A filter reads an embed run's vectors; samples added since (new synthetic samples, appended real
ones) have none. :class:`MissingEmbeddings` embeds them with the checkpoint that made the others
(the run's train run and seed), in memory while a filter reads its inputs, and :meth:`write`
stores them in the run's field and similarity index afterwards, so reading changes nothing. An
embed run without a network to re-embed with (hand-made vectors, a train run deleted or
retrained since) refuses instead, naming the reason.
"""

from __future__ import annotations

import fiftyone as fo
import numpy as np

from curation.errors import CurateError
from curation.runs.embed.compute import EMBED, EmbedConfig, embed_view
from curation.runs.records import run_timestamp
from curation.runs.similarity import BACKENDS, backend_failure, quiet_clients
from curation.runs.train.fit import TRAIN


def network_problem(dataset: fo.Dataset, name: str, config: EmbedConfig) -> str | None:
    """Why embed run ``name`` cannot embed more samples with its own network (``None``: it can)."""
    run = config.train_run
    if run is None:
        return f"embed run {name!r} records no network to embed them with"
    if not TRAIN.exists(dataset, run):
        return f"train run {run!r}, whose network embed run {name!r} used, is gone"
    if run_timestamp(dataset, "train", run) > run_timestamp(dataset, "embed", name):
        return f"train run {run!r} was retrained after embed run {name!r}"
    return None


class MissingEmbeddings:
    """The vectors of samples that lack embed run ``name``'s, made with its network.

    Args:
        dataset: the project dataset.
        name: the embed run.
        config: its config.
    """

    def __init__(self, dataset: fo.Dataset, name: str, config: EmbedConfig) -> None:
        self.dataset, self.name, self.config = dataset, name, config
        self.vectors: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def fill(self, ids: list[str], vectors: list, what: str) -> list:
        """``vectors`` (of the samples ``ids``, ``None`` where missing) with the missing ones
        embedded.

        Raises:
            CurateError: some are missing and the run cannot embed them (:func:`network_problem`).
        """
        missing = [i for i, v in zip(ids, vectors, strict=True) if v is None]
        if not missing:
            return vectors
        problem = network_problem(self.dataset, self.name, self.config)
        if problem is not None:
            raise CurateError(
                f"{len(missing)} of {len(ids)} {what} have no embedding in "
                f"{self.config.field!r} and {problem}; embed them first (`curate embed`)"
            )
        BACKENDS.get(self.config.backend or "sklearn").check_reachable(self.config.url)
        _, got_ids, got = embed_view(
            self.dataset,
            self.config.train_run,
            self.dataset.select(missing, ordered=True),
            seed_index=self.config.seed_index,
        )
        made = dict(zip(got_ids, got, strict=True))
        self.vectors.update(made)
        self.counts[what] = self.counts.get(what, 0) + len(made)
        return [made[i] if v is None else v for i, v in zip(ids, vectors, strict=True)]

    def note(self) -> str | None:
        """The line saying what was embedded (``None``: nothing)."""
        if not self.vectors:
            return None
        counts = " and ".join(f"{n} {what}" for what, n in self.counts.items())
        return (
            f"embedded {counts} that had no {self.config.field!r} with the network of embed run "
            f"{self.name!r} (train run {self.config.train_run!r}, seed index "
            f"{self.config.seed_index})"
        )

    def write(self) -> None:
        """Store the vectors made in the run's field and similarity index, and count the
        samples embedded in its record."""
        if not self.vectors:
            return
        field, key = self.config.field, self.config.brain_key
        ids = list(self.vectors)
        vectors = np.stack([self.vectors[i] for i in ids])
        self.dataset.set_values(field, dict(zip(ids, vectors, strict=True)), key_field="id")
        if key and key in self.dataset.list_brain_runs():
            self._add_to_index(key, ids, vectors)
        config, results = EMBED.load(self.dataset, self.name)
        results.n = len(self.dataset.exists(field))
        EMBED.store(self.dataset, self.name, config, results)

    def _add_to_index(self, key: str, ids: list[str], vectors: np.ndarray) -> None:
        backend = BACKENDS.get(self.config.backend or "sklearn")
        try:
            with quiet_clients():
                index = self.dataset.load_brain_results(
                    key, cache=False, **backend.load_options(self.config.url)
                )
                index.add_to_index(vectors, np.asarray(ids))
                index.save()
        except Exception as error:
            if backend.name == "sklearn":
                raise
            raise backend_failure(backend.name, error) from None
