"""Embed runs: embeddings from a trained classifier and the similarity index over them.

:func:`compute_embeddings` runs a train run's checkpoint over any view (real and synthetic
samples alike), stores the penultimate-layer vector of each sample in a field (``emb_<name>`` by
default) and indexes that field with FiftyOne Brain (``sim_<name>``), recording the run
``embed_<name>`` (:class:`EmbedConfig`, :class:`EmbedResults`). Deleting the run removes the
field and the index (and the index's table in an external backend).
:func:`find_similar` lists the real samples nearest to any indexed sample.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import numpy as np

from curation.datasets import as_dataset, resolve_view
from curation.errors import CurateError
from curation.runs.base import Record, RunKind, register
from curation.runs.footprint import Footprint
from curation.runs.records import latest_run, run_key
from curation.runs.similarity import BACKENDS, DEFAULT_METRIC, METRICS, get_backend
from curation.schema import LABEL_FIELD, ORIGIN_FIELD, REAL, SPLIT_FIELD


def default_names(name: str) -> tuple[str, str]:
    """``(embedding field, brain key)`` of embed run ``name``."""
    suffix = run_key("embed", name).removeprefix("embed_")
    return f"emb_{suffix}", f"sim_{suffix}"


@dataclass(frozen=True)
class Neighbour:
    """A sample near a query in an embed run's index (:func:`find_similar`)."""

    id: str
    distance: float
    filepath: str
    label: str | None
    split: str | None
    origin: str | None


@dataclass(frozen=True)
class EmbedConfig(Record):
    """What an embed run was asked (stored as ``config``)."""

    train_run: str | None = None
    seed_index: int = 0
    checkpoint_seed: int | None = None
    view: str = "all"
    field: str = ""
    brain_key: str = ""
    backend: str = "sklearn"
    url: str | None = None
    metric: str = DEFAULT_METRIC


@dataclass
class EmbedResults(Record):
    """What an embed run gave: ``n`` samples embedded in ``dim`` dimensions (stored), and, when
    returned by :func:`compute_embeddings`, the run's ``name``, ``field``, ``brain_key`` and
    ``backend``."""

    n: int = 0
    dim: int = 0
    name: str = ""
    field: str = ""
    brain_key: str = ""
    backend: str = ""

    def to_record(self) -> dict[str, Any]:
        return {"n": self.n, "dim": self.dim}


@register
class EmbedKind(RunKind):
    """Embed runs: the embedding field and the similarity index."""

    kind = "embed"
    config_type = EmbedConfig
    results_type = EmbedResults

    def footprint(self, dataset: fo.Dataset, name: str) -> Footprint:
        config, _ = self.load(dataset, name)
        field, brain_key = default_names(name)
        return Footprint(fields=[config.field or field], brain_runs=[config.brain_key or brain_key])

    def delete(self, dataset: fo.Dataset, name: str) -> Footprint:
        config, _ = self.load(dataset, name)
        backend = BACKENDS.get(config.backend or "sklearn")
        present = self.footprint(dataset, name).present(dataset)
        for brain_key in present.brain_runs:  # reach the external index with its URL first
            _drop_index(dataset, brain_key, backend.load_options(config.url))
        return super().delete(dataset, name)


EMBED = EmbedKind()


def _drop_index(dataset: fo.Dataset, brain_key: str, load_options: dict) -> None:
    if brain_key not in dataset.list_brain_runs():
        return
    # an unreachable external index: forget our record of it anyway
    with contextlib.suppress(Exception):
        dataset.load_brain_results(brain_key, cache=False, **load_options).cleanup()
    dataset.delete_brain_run(brain_key)


def _build_index(dataset, ids, field, brain_key, options, backend_name) -> None:
    import fiftyone.brain as fob

    try:
        fob.compute_similarity(
            dataset.select(list(ids)),
            embeddings=field,
            brain_key=brain_key,
            progress=False,
            **options,
        )
    except Exception as error:
        if backend_name == "sklearn":
            raise
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CurateError(f"similarity backend {backend_name!r} failed: {first}") from None


def compute_embeddings(
    dataset: fo.Dataset | str,
    run: str,
    *,
    view: str = "all",
    name: str | None = None,
    field: str | None = None,
    brain_key: str | None = None,
    backend: str = "sklearn",
    url: str | None = None,
    metric: str = DEFAULT_METRIC,
    seed_index: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = True,
) -> EmbedResults:
    """Embed a view with a train run's network and index the embeddings for similarity search.

    Args:
        dataset: the project dataset (or its name).
        run: the train run whose checkpoint embeds.
        view: a saved or built-in view (default ``all``: real, pool and synthetic samples).
        name: the embed run's name (default: ``run``); an older embed run of that name, its
            field and its index are replaced.
        field: the sample field for the vectors (default ``emb_<name>``).
        brain_key: the similarity index's key (default ``sim_<name>``).
        backend: ``sklearn`` (default), ``lancedb``, ``qdrant``, ``milvus`` or ``mongodb``.
        url: server URL (qdrant, milvus) or LanceDB folder (default: under the media folder).
        metric: ``euclidean`` (default) or ``cosine``.
        seed_index: which seed's checkpoint of the train run (0: the first).
        batch_size: inference batch size.
        device: ``auto``, ``cpu`` or ``cuda``.
        num_threads: torch intra-op threads (``None``: torch's default).
        progress: show progress bars.

    Returns:
        The :class:`EmbedResults` (``n`` samples embedded, ``dim``, and the run's names).

    Raises:
        InputError: for an unknown run, view or backend, a missing backend client, or images
            the checkpoint was not made for; nothing is stored then.
    """
    from brain.classifier import run_checkpoint
    from curation.runs.predictions import load_classifier, read_for_card

    name = name or run
    default_field, default_key = default_names(name)
    field, brain_key = field or default_field, brain_key or default_key
    if metric not in METRICS:
        raise CurateError(
            f"unknown `metric` {metric!r}; choose from {', '.join(METRICS)}", params=("metric",)
        )
    chosen = get_backend(backend)
    dataset = as_dataset(dataset)
    options = chosen.index_options(dataset.name, brain_key, url, metric)
    model, card = load_classifier(dataset, run, seed_index=seed_index)
    if field in {LABEL_FIELD, SPLIT_FIELD, ORIGIN_FIELD, "filepath", "id", "metadata"}:
        raise CurateError(f"cannot store embeddings in the reserved field {field!r}")
    images = read_for_card(dataset, resolve_view(dataset, view), card, progress=progress)
    vectors = run_checkpoint(
        model,
        card,
        images,
        features=True,
        batch_size=batch_size,
        device=device,
        num_threads=num_threads,
        progress=progress,
    )

    url = options.get(chosen.url_param) if chosen.url_param else None
    if EMBED.exists(dataset, name):
        old, _ = EMBED.load(dataset, name)
        old_backend = BACKENDS.get(old.backend or "sklearn")
        _drop_index(dataset, old.brain_key or brain_key, old_backend.load_options(old.url))
        if dataset.has_sample_field(old.field or field):
            dataset.delete_sample_field(old.field or field)
    _drop_index(dataset, brain_key, chosen.load_options(url))
    if dataset.has_sample_field(field):
        dataset.delete_sample_field(field)
    dataset.set_values(field, dict(zip(images.ids, vectors, strict=True)), key_field="id")
    try:
        _build_index(dataset, images.ids, field, brain_key, options, backend)
    except Exception:
        dataset.delete_sample_field(field)
        raise
    config = EmbedConfig(
        train_run=run,
        seed_index=seed_index,
        checkpoint_seed=card.seed,
        view=view,
        field=field,
        brain_key=brain_key,
        backend=backend,
        url=url,
        metric=metric,
    )
    results = EmbedResults(len(images), int(vectors.shape[1]), name, field, brain_key, backend)
    EMBED.store(dataset, name, config, results)
    return results


def latest_embed_run(dataset: fo.Dataset) -> str:
    """The most recent embed run of ``dataset``.

    Raises:
        CurateError: if there is none.
    """
    name = latest_run(dataset, "embed")
    if name is None:
        raise CurateError(f"dataset {dataset.name!r} has no embeddings; run `curate embed` first")
    return name


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
        CurateError: if there is no embed run or index, or the sample is unknown or not embedded.
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
    if config.brain_key not in dataset.list_brain_runs():
        raise CurateError(f"the similarity index {config.brain_key!r} is missing; re-run embed")
    backend = get_backend(config.backend)
    index = dataset.load_brain_results(
        config.brain_key, cache=False, **backend.load_options(config.url)
    )
    candidates = dataset.match(fo.ViewField(ORIGIN_FIELD) == REAL) if real_only else dataset
    with index.use_view(candidates):
        size = index.index_size
        if size == 0:
            return []
        ids, _, dists = index._kneighbors(  # the backend contract behind sort_by_similarity
            query=np.asarray(vector, dtype=np.float32),
            k=min(k + 1, size),
            aggregation="mean",
            return_dists=True,
        )
    dists = backend.to_distances(list(dists), config.metric or DEFAULT_METRIC)
    pairs = [(str(i), d) for i, d in zip(ids, dists, strict=True) if str(i) != sample_id]
    pairs = pairs[:k]
    if not pairs:
        return []
    found = dataset.select([i for i, _ in pairs], ordered=True)
    paths, labels, splits, origins = found.values(
        ["filepath", f"{LABEL_FIELD}.label", SPLIT_FIELD, ORIGIN_FIELD]
    )
    return [
        Neighbour(i, d, p, lab, s, o)
        for (i, d), p, lab, s, o in zip(pairs, paths, labels, splits, origins, strict=True)
    ]
