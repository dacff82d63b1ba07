"""Embed runs: embeddings from a trained classifier and the similarity index over them.

:func:`compute_embeddings` runs a train run's checkpoint over any view (real and synthetic
samples alike), stores the penultimate-layer vector of each sample in a field (``emb_<name>`` by
default) and indexes that field with FiftyOne Brain (``sim_<name>``), recording the run
``embed_<name>`` (:class:`EmbedConfig`, :class:`EmbedResults`). Deleting the run removes the
field and the index (and the index's table in an external backend).
The queries on the index are in :mod:`curation.runs.neighbours`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import fiftyone as fo

from curation.datasets import as_dataset, resolve_view
from curation.errors import CurateError
from curation.runs.base import Record, RunKind, register
from curation.runs.footprint import Footprint, cleanup_brain_run
from curation.runs.records import latest_run, list_runs, run_key
from curation.runs.similarity import (
    BACKENDS,
    DEFAULT_METRIC,
    METRICS,
    backend_failure,
    get_backend,
    quiet_clients,
)
from curation.schema import LABEL_FIELD, ORIGIN_FIELD, SPLIT_FIELD


def default_names(name: str) -> tuple[str, str]:
    """``(embedding field, brain key)`` of embed run ``name``."""
    suffix = run_key("embed", name).removeprefix("embed_")
    return f"emb_{suffix}", f"sim_{suffix}"


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
        present = self.footprint(dataset, name).present(dataset)
        for brain_key in present.brain_runs:  # reach the external index with its URL first
            _drop_run_index(dataset, config, brain_key)
        super().delete(dataset, name)
        return present


EMBED = EmbedKind()


def _drop_run_index(dataset: fo.Dataset, config: EmbedConfig, brain_key: str) -> None:
    backend = BACKENDS.get(config.backend or "sklearn")
    cleanup_brain_run(dataset, config.brain_key or brain_key, **backend.load_options(config.url))


def drop_indexes(dataset: fo.Dataset) -> None:
    """Drop the similarity index of every embed run of ``dataset``, those on a server or in a
    file outside its media folder included (before the dataset itself is deleted)."""
    for name in list_runs(dataset, EMBED.kind):
        config, _ = EMBED.load(dataset, name)
        _drop_run_index(dataset, config, default_names(name)[1])


def _build_index(dataset, field, brain_key, options, backend_name) -> None:
    """Index the samples that hold ``field`` (exactly those just embedded: a view by field, not
    by ids, whose list would pass MongoDB's 16 MB command limit at about a million samples)."""
    import fiftyone.brain as fob

    try:
        with quiet_clients():
            fob.compute_similarity(
                dataset.exists(field),
                embeddings=field,
                brain_key=brain_key,
                progress=False,
                **options,
            )
    except Exception as error:
        if backend_name == "sklearn":
            raise
        raise backend_failure(backend_name, error) from None


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
        url: Milvus or Qdrant server URL, Milvus Lite ``.db`` path or LanceDB folder (default:
            FiftyOne Brain's configured URL, else ``<media>/milvus.db`` or ``<media>/lancedb``).
        metric: ``euclidean`` (default) or ``cosine``.
        seed_index: which seed's checkpoint of the train run (0: the first).
        batch_size: inference batch size.
        device: ``auto``, ``cpu`` or ``cuda``.
        num_threads: torch intra-op threads (``None``: torch's default).
        progress: show progress bars.

    Returns:
        The :class:`EmbedResults` (``n`` samples embedded, ``dim``, and the run's names).

    Raises:
        InputError: for an unknown run, view or backend, a missing backend client, a server
            that does not answer within seconds, or images the checkpoint was not made for;
            nothing is stored then.
    """
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
    url = options.get(chosen.url_param) if chosen.url_param else None
    chosen.check_reachable(url)  # before any inference or write

    from brain.classifier import run_checkpoint
    from curation.runs.predictions import load_classifier, read_for_card

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

    if EMBED.exists(dataset, name):
        old, _ = EMBED.load(dataset, name)
        _drop_run_index(dataset, old, brain_key)
        if dataset.has_sample_field(old.field or field):
            dataset.delete_sample_field(old.field or field)
    cleanup_brain_run(dataset, brain_key, **chosen.load_options(url))
    if dataset.has_sample_field(field):
        dataset.delete_sample_field(field)
    dataset.set_values(field, dict(zip(images.ids, vectors, strict=True)), key_field="id")
    try:
        _build_index(dataset, field, brain_key, options, backend)
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
