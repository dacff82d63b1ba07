"""Embed runs: embeddings from a trained classifier and the similarity index over them.

:func:`compute_embeddings` runs a train run's checkpoint over any view (real and synthetic
samples alike), stores the penultimate-layer vector of each sample in a field (``emb_<name>`` by
default) and indexes that field with FiftyOne Brain (``sim_<name>``), recording the run
``embed_<name>`` (:class:`EmbedConfig`, :class:`EmbedResults`). Deleting the run removes the
field and the index (and the index's table in an external backend).
The queries on the index are in :mod:`curation.runs.neighbours`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import fiftyone as fo
import fiftyone.brain as fob

from brain.classifier import run_checkpoint
from curation.datasets import as_dataset, resolve_view
from curation.errors import CurateError
from curation.names import FIELD_NAME, check_name, check_run_name
from curation.runs.base import RESOLVED, Record, RunKind, register
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
from curation.runs.train.predictions import load_classifier, read_for_card
from curation.schema import (
    FINE_LABEL_FIELD,
    GROUP_FIELD,
    LABEL_FIELD,
    LINEAGE_FIELD,
    ORIGIN_FIELD,
    SPLIT_FIELD,
)

RESERVED_FIELDS = frozenset(
    {LABEL_FIELD, SPLIT_FIELD, ORIGIN_FIELD, GROUP_FIELD, LINEAGE_FIELD, FINE_LABEL_FIELD}
    | {"filepath", "id", "metadata", "tags", "created_at", "last_modified_at"}
)
"""Fields an embedding must not replace."""


def default_names(name: str) -> tuple[str, str]:
    """``(embedding field, brain key)`` of embed run ``name``."""
    suffix = run_key("embed", name).removeprefix("embed_")
    return f"emb_{suffix}", f"sim_{suffix}"


@dataclass(frozen=True)
class EmbedConfig(Record):
    """What an embed run is asked (stored as ``config``, with the checkpoint's seed and the size
    policy of the train run it embeds with: ``size`` and ``pad`` as its network saw images).
    Checked when built."""

    train_run: str | None = None
    seed_index: int = 0
    checkpoint_seed: int | None = dataclasses.field(default=None, metadata=RESOLVED)
    view: str = "all"
    field: str | None = None
    brain_key: str | None = None
    backend: str = "sklearn"
    url: str | None = None
    metric: str = DEFAULT_METRIC
    size: int | None = dataclasses.field(default=None, metadata=RESOLVED)
    pad: str | None = dataclasses.field(default=None, metadata=RESOLVED)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise CurateError(
                f"unknown `metric` {self.metric!r}; choose from {', '.join(METRICS)}",
                params=("metric",),
            )
        for param in ("field", "brain_key"):
            if getattr(self, param) is not None:  # not recorded by older versions
                _check_identifier(getattr(self, param), param)


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

    def inputs(self, dataset: fo.Dataset, name: str) -> list[tuple[str, str]]:
        config, _ = self.load(dataset, name)
        return [("train", config.train_run)] if config.train_run else []

    def execute(
        self, dataset: fo.Dataset, name: str, config: EmbedConfig, *, overwrite: bool, **options
    ) -> EmbedResults:
        return _embed(dataset, name, config, overwrite=overwrite, **options)

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


def _check_identifier(value: str, param: str) -> None:
    """``value`` names a top-level sample field or a brain key (:data:`curation.names.FIELD_NAME`)
    that is not one of the project's own fields."""
    check_name(value, FIELD_NAME, param)
    if value in RESERVED_FIELDS:
        raise CurateError(f"`{param}` {value!r} is a reserved field", params=(param,))


def _check_field_free(dataset: fo.Dataset, name: str, field: str) -> None:
    """Refuse a ``field`` that holds something other than embed run ``name``'s own vectors (a
    rerun replaces the field, so it must be this run's to replace)."""
    own = {default_names(name)[0]}
    for other in list_runs(dataset, EMBED.kind):
        other_field = EMBED.load(dataset, other)[0].field or default_names(other)[0]
        if other == name:
            own.add(other_field)
        elif other_field == field:
            raise CurateError(
                f"`field` {field!r} holds the embeddings of embed run {other!r}; choose another",
                params=("field",),
            )
    if field not in own and dataset.has_sample_field(field):
        raise CurateError(
            f"`field` {field!r} exists and holds no embeddings of embed run {name!r}; choose "
            "another",
            params=("field",),
        )


def _build_index(dataset, field, brain_key, options, backend_name) -> None:
    """Index the samples that hold ``field`` (exactly those just embedded: a view by field, not
    by ids, whose list would pass MongoDB's 16 MB command limit at about a million samples)."""
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


def embed_view(
    dataset: fo.Dataset,
    run: str,
    view: fo.DatasetView,
    *,
    seed_index: int = 0,
    batch_size: int = 256,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = False,
):
    """The penultimate-layer vectors of ``view``'s samples under seed ``seed_index`` of train run
    ``run`` (nothing is written).

    Returns:
        ``(card, ids, vectors)``: the checkpoint's model card, the sample ids in the view's
        order and their ``(N, D)`` vectors.

    Raises:
        InputError: an unknown run or seed, or images the checkpoint was not made for.
    """
    model, card = load_classifier(dataset, run, seed_index=seed_index)
    images = read_for_card(dataset, view, card, progress=progress)
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
    return card, list(images.ids), vectors


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
    overwrite: bool = False,
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
        overwrite: replace a stored embed run of this name that was asked other settings
            (without it such a rerun is refused).
        num_threads: torch intra-op threads (``None``: torch's default).
        progress: show progress bars.

    Returns:
        The :class:`EmbedResults` (``n`` samples embedded, ``dim``, and the run's names).

    Raises:
        InputError: for an unknown run, view or backend, a missing backend client, a server
            that does not answer within seconds, or images the checkpoint was not made for;
            nothing is stored then.
    """
    name = run if name is None else check_run_name(name, "name")
    default_field, default_key = default_names(name)
    config = EmbedConfig(
        train_run=run,
        seed_index=seed_index,
        view=view,
        field=default_field if field is None else field,
        brain_key=default_key if brain_key is None else brain_key,
        backend=backend,
        url=url,
        metric=metric,
    )
    return EMBED.run(
        as_dataset(dataset),
        name,
        config,
        overwrite=overwrite,
        batch_size=batch_size,
        device=device,
        num_threads=num_threads,
        progress=progress,
    )


def _embed(
    dataset: fo.Dataset,
    name: str,
    config: EmbedConfig,
    *,
    overwrite: bool,
    batch_size: int = 256,
    device: str = "auto",
    num_threads: int | None = None,
    progress: bool = True,
) -> EmbedResults:
    """What :meth:`EmbedKind.execute` does: embed, index, store (see
    :func:`compute_embeddings`)."""
    field, brain_key, backend = config.field, config.brain_key, config.backend
    chosen = get_backend(backend)
    _check_field_free(dataset, name, field)
    options = chosen.index_options(dataset.name, brain_key, config.url, config.metric)
    url = options.get(chosen.url_param) if chosen.url_param else None
    config = dataclasses.replace(config, url=url)
    chosen.check_reachable(url)  # before any inference or write

    card, ids, vectors = embed_view(
        dataset,
        config.train_run,
        resolve_view(dataset, config.view),
        seed_index=config.seed_index,
        batch_size=batch_size,
        device=device,
        num_threads=num_threads,
        progress=progress,
    )

    chosen.check_opens(url)  # before an older run's field and index are dropped
    EMBED.check_reuse(dataset, name, config, overwrite=overwrite)  # the last check
    replaced = EMBED.exists(dataset, name)
    if replaced:
        old, _ = EMBED.load(dataset, name)
        _drop_run_index(dataset, old, brain_key)
        if dataset.has_sample_field(old.field or field):
            dataset.delete_sample_field(old.field or field)
    cleanup_brain_run(dataset, brain_key, **chosen.load_options(url))
    if dataset.has_sample_field(field):
        dataset.delete_sample_field(field)
    dataset.set_values(field, dict(zip(ids, vectors, strict=True)), key_field="id")
    try:
        _build_index(dataset, field, brain_key, options, backend)
    except BaseException:
        # no half-made run: neither the field, nor the brain run the backend may have
        # registered, nor the record of the run replaced (its field and index are gone)
        dataset.delete_sample_field(field)
        cleanup_brain_run(dataset, brain_key, **chosen.load_options(url))
        if replaced:
            EMBED.delete(dataset, name)
        raise
    policy = card.size_policy
    config = dataclasses.replace(
        config, checkpoint_seed=card.seed, size=policy.size, pad=policy.pad
    )
    results = EmbedResults(len(ids), int(vectors.shape[1]), name, field, brain_key, backend)
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
