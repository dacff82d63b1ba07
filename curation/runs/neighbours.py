"""Nearest-neighbour queries on an embed run's similarity index, whatever its backend.

:func:`find_similar` lists the samples nearest to any indexed sample (``curate similar``);
:func:`nearest_neighbours` finds the nearest one to each of many over one connection (the
near-copy links of :mod:`curation.runs.ssim`). Both use the backend's k-nearest query, the one
behind ``sort_by_similarity``, restricted to real samples by default, and report plain euclidean
or cosine distances whatever the backend reports (:meth:`SimilarityBackend.to_distances`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

from curation.datasets import as_dataset
from curation.errors import CurateError
from curation.runs.embed.compute import EMBED, EmbedConfig, latest_embed_run
from curation.runs.similarity import (
    DEFAULT_METRIC,
    SimilarityBackend,
    backend_failure,
    get_backend,
    quiet_clients,
)
from curation.schema import LABEL_FIELD, ORIGIN_FIELD, REAL, SPLIT_FIELD


@dataclass(frozen=True)
class Neighbour:
    """A sample near a query in an embed run's index (:func:`find_similar`)."""

    id: str
    distance: float
    filepath: str
    label: str | None
    split: str | None
    origin: str | None


def find_similar(
    dataset: fo.Dataset | str,
    sample_id: str,
    *,
    k: int = 5,
    name: str | None = None,
    real_only: bool = True,
) -> list[Neighbour]:
    """The ``k`` samples nearest to ``sample_id`` in an embed run's index (the query excluded).

    Args:
        dataset: the project dataset (or its name).
        sample_id: an embedded sample (real or synthetic).
        k: how many neighbours.
        name: the embed run (default: the latest one).
        real_only: only real samples as neighbours.

    Returns:
        The neighbours, nearest first.

    Raises:
        CurateError: if there is no embed run or index, the sample is unknown or not embedded,
            the index cannot be reached, or its backend cannot return ``k`` neighbours.
    """
    if k < 1:
        raise CurateError(f"`k` must be at least 1, got {k}", params=("k",))
    dataset = as_dataset(dataset)
    name = name or latest_embed_run(dataset)
    config, _ = EMBED.load(dataset, name)
    try:
        sample = dataset[sample_id]
    except (KeyError, ValueError, TypeError):
        raise CurateError(f"no sample {sample_id!r} in dataset {dataset.name!r}") from None
    vector = sample[config.field] if sample.has_field(config.field) else None
    if vector is None:
        raise CurateError(f"sample {sample_id} has no embedding in embed run {name!r}")
    return _query_index(dataset, config, {sample_id: vector}, k, real_only)[sample_id]


def nearest_neighbours(
    dataset: fo.Dataset | str,
    sample_ids: list[str],
    *,
    name: str | None = None,
    real_only: bool = True,
) -> dict[str, Neighbour]:
    """The nearest other sample to each of ``sample_ids`` in an embed run's index, over one
    connection to it (how near-copies are linked to the real image they copy).

    Returns:
        Sample id -> its nearest neighbour; samples without an embedding in the run are left
        out.

    Raises:
        CurateError: as :func:`find_similar`.
    """
    dataset = as_dataset(dataset)
    name = name or latest_embed_run(dataset)
    config, _ = EMBED.load(dataset, name)
    if not dataset.has_sample_field(config.field):
        raise CurateError(f"the embedding field {config.field!r} of embed run {name!r} is missing")
    ids, vectors = dataset.select(list(sample_ids)).values(["id", config.field])
    queries = {i: v for i, v in zip(ids, vectors, strict=True) if v is not None}
    found = _query_index(dataset, config, queries, 1, real_only)
    return {i: hits[0] for i, hits in found.items() if hits}


def _open_index(dataset: fo.Dataset, config: EmbedConfig, backend: SimilarityBackend):
    if config.brain_key not in dataset.list_brain_runs():
        raise CurateError(f"the similarity index {config.brain_key!r} is missing; re-run embed")
    backend.check_reachable(config.url)
    try:
        return dataset.load_brain_results(
            config.brain_key, cache=False, **backend.load_options(config.url)
        )
    except Exception as error:
        if backend.name == "sklearn":
            raise
        raise backend_failure(backend.name, error) from None


def _query_index(
    dataset: fo.Dataset, config: EmbedConfig, queries: dict[str, Any], k: int, real_only: bool
) -> dict[str, list[Neighbour]]:
    """The ``k`` nearest samples to each query vector (sample id -> vector), the query sample
    itself excluded, by the backend's k-nearest query (the one behind sort_by_similarity)."""
    backend = get_backend(config.backend)
    backend.require("k-nearest", k=k)
    candidates = dataset.match(fo.ViewField(ORIGIN_FIELD) == REAL) if real_only else dataset
    with quiet_clients():
        index = _open_index(dataset, config, backend)
        with index.use_view(candidates):
            found = {i: _nearest(index, v, k + 1, backend.max_k) for i, v in queries.items()}
    metric = config.metric or DEFAULT_METRIC
    pairs = {
        sample_id: [
            (str(i), d)
            for i, d in zip(ids, backend.to_distances(dists, metric), strict=True)
            if str(i) != sample_id
        ][:k]
        for sample_id, (ids, dists) in found.items()
    }
    return _describe(dataset, pairs)


def _nearest(index, vector: Any, k: int, max_k: int | None) -> tuple[list, list]:
    """Ids and reported distances of the ``k`` nearest samples to one vector in the index's
    view. One vector per call with ``"mean"``, as sort_by_similarity does: FiftyOne Brain's
    sklearn path without aggregation compares uncentred queries with centred vectors."""
    size = min(index.index_size, max_k or index.index_size)
    if size == 0:
        return [], []
    ids, _, dists = index._kneighbors(
        query=np.asarray(vector, dtype=np.float32),
        k=min(k, size),
        aggregation="mean",
        return_dists=True,
    )
    return list(ids), list(dists)


def _describe(
    dataset: fo.Dataset, pairs: dict[str, list[tuple[str, float]]]
) -> dict[str, list[Neighbour]]:
    """``pairs`` (query -> neighbour ids and distances) with each neighbour's path and labels."""
    found = {i for hits in pairs.values() for i, _ in hits}
    if not found:
        return {sample_id: [] for sample_id in pairs}
    rows = dataset.select(list(found)).values(
        ["id", "filepath", f"{LABEL_FIELD}.label", SPLIT_FIELD, ORIGIN_FIELD]
    )
    info = {row[0]: row[1:] for row in zip(*rows, strict=True)}
    return {
        sample_id: [Neighbour(i, d, *info[i]) for i, d in hits] for sample_id, hits in pairs.items()
    }
