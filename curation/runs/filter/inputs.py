"""What a filter run reads from a dataset: embeddings, labels, images, probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field

import fiftyone as fo
import numpy as np

from brain.duplicates import find_duplicates
from brain.filters.base import as_float_matrix
from brain.filters.image_stats import image_statistics
from brain.size_policy import SizePolicy
from curation.datasets import builtin_views, decode_view, labelled
from curation.errors import CurateError
from curation.names import NO_LINEAGE, REAL_TRAIN, REAL_VAL
from curation.runs.embed.compute import EMBED, latest_embed_run
from curation.runs.embed.more import MissingEmbeddings
from curation.runs.train.fit import TRAIN
from curation.runs.train.predictions import predict_proba
from curation.schema import LABEL_FIELD, LINEAGE_FIELD, rare_class, size_policy
from curation.tags import MANUAL_FIELD

TRAIN_VIEW = REAL_TRAIN


@dataclass
class FilterInputs:
    """What a filter run reads from the dataset.

    Attributes:
        embed_run: the embed run read; field: its embedding field.
        classifier_run: the train run whose network embedded (``None`` if not recorded).
        real_ids, real, rare: the labelled real train samples, their embeddings and rare mask.
        synthetic_ids, synthetic: the synthetic samples and their embeddings.
        generators: the lineage run of each synthetic sample.
        fine, fine_field: the real samples' fine labels, when the network learnt them.
        real_stats, synthetic_stats: image statistics, for filters that judge images.
        missing: the samples that had no embedding, embedded with the embed run's network
            (written by the filter run, before its own writes).
        policy: the size policy images are compared and judged under (image statistics,
            duplicates, the near-copy gate): the dataset's, or the run's own ``size``.
    """

    embed_run: str
    field: str
    classifier_run: str | None
    real_ids: list[str]
    real: np.ndarray
    rare: np.ndarray
    synthetic_ids: list[str]
    synthetic: np.ndarray
    generators: list[str]
    fine: np.ndarray | None = None
    fine_field: str | None = None
    real_stats: np.ndarray | None = None
    synthetic_stats: np.ndarray | None = None
    missing: MissingEmbeddings | None = None
    policy: SizePolicy = field(default_factory=SizePolicy)


def _read_vectors(
    view: fo.DatasetView, field: str, what: str, dim: int | None, missing: MissingEmbeddings
):
    """Ids and embeddings of ``view``'s samples, those without one embedded by ``missing``."""
    ids, vectors = view.values(["id", field])
    vectors = missing.fill(list(ids), list(vectors), what)
    lengths = {len(v) for v in vectors}
    if len(lengths) > 1 or (dim is not None and lengths != {dim}):
        raise CurateError(
            f"{what} have embeddings of lengths {sorted(lengths)} in {field!r} where the embed "
            f"run made {dim}: embeddings from different runs mixed; re-run `curate embed`"
        )
    return list(ids), as_float_matrix(np.asarray(vectors, dtype=np.float64), name=f"{what}")


def read_inputs(
    dataset: fo.Dataset, embed: str | None = None, policy: SizePolicy | None = None
) -> FilterInputs:
    """Read and check the embeddings a filter run needs.

    ``policy``: the size policy the run's image checks use (default: the dataset's).
    Samples without an embedding are embedded with the embed run's network, in memory
    (``inputs.missing`` writes them); without a network to do so, they are refused.

    Raises:
        CurateError: no embed run, no rare class, no synthetic samples, missing embeddings the
            embed run cannot make, mixed embeddings.
    """
    rare_label = rare_class(dataset)
    if rare_label is None:
        raise CurateError(f"dataset {dataset.name!r} records no rare class")
    embed = embed or latest_embed_run(dataset)
    config, results = EMBED.load(dataset, embed)
    if not dataset.has_sample_field(config.field):
        raise CurateError(f"the embedding field {config.field!r} of embed run {embed!r} is missing")
    views = builtin_views(dataset)
    real_view = labelled(views[TRAIN_VIEW])
    if len(views["synthetic"]) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no synthetic samples to filter")
    if len(real_view) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no labelled real train samples")
    dim = results.dim or None
    missing = MissingEmbeddings(dataset, embed, config)
    real_ids, real = _read_vectors(real_view, config.field, "real train samples", dim, missing)
    synthetic_ids, synthetic = _read_vectors(
        views["synthetic"], config.field, "synthetic samples", dim, missing
    )
    labels = real_view.values(f"{LABEL_FIELD}.label")
    runs = views["synthetic"].values(f"{LINEAGE_FIELD}.run")
    fine_field = _fine_field(dataset, config.train_run)
    fine = None
    if fine_field is not None:
        fine = np.array(real_view.values(f"{fine_field}.label"), dtype=object)
    return FilterInputs(
        embed_run=embed,
        field=config.field,
        classifier_run=config.train_run,
        real_ids=real_ids,
        real=real,
        rare=np.array([label == rare_label for label in labels], dtype=bool),
        synthetic_ids=synthetic_ids,
        synthetic=synthetic,
        generators=[run or NO_LINEAGE for run in runs],
        fine=fine,
        fine_field=fine_field,
        missing=missing,
        policy=policy or size_policy(dataset),
    )


def _fine_field(dataset: fo.Dataset, train_run: str | None) -> str | None:
    """The fine-label field the embed run's classifier was trained on, if not the task labels."""
    if train_run is None or not TRAIN.exists(dataset, train_run):
        return None
    config, _ = TRAIN.load(dataset, train_run)
    field = config.label_field or LABEL_FIELD
    return None if field == LABEL_FIELD else field


def read_val(dataset: fo.Dataset, inputs: FilterInputs) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Ids, embeddings and rare mask of the labelled real val samples (for calibration).

    Raises:
        CurateError: no labelled val sample, or val samples without embeddings that the embed
            run cannot make.
    """
    view = labelled(builtin_views(dataset)[REAL_VAL])
    if len(view) == 0:
        raise CurateError(f"dataset {dataset.name!r} has no labelled real val samples")
    missing = inputs.missing or MissingEmbeddings(
        dataset, inputs.embed_run, EMBED.load(dataset, inputs.embed_run)[0]
    )
    ids, vectors = _read_vectors(
        view, inputs.field, "real val samples", inputs.real.shape[1], missing
    )
    labels = view.values(f"{LABEL_FIELD}.label")
    rare_label = rare_class(dataset)
    return ids, vectors, np.array([label == rare_label for label in labels], dtype=bool)


def probabilities(dataset: fo.Dataset, run: str | None, view: str, ids: list[str]) -> np.ndarray:
    """Rare-class probabilities of the samples ``ids`` of ``view`` under train run ``run``."""
    if run is None:
        raise CurateError("the embed run names no classifier run for the confidence filter")
    got_ids, proba = predict_proba(dataset, run, view)
    lookup = dict(zip(got_ids, proba, strict=True))
    return np.array([lookup[i] for i in ids], dtype=np.float64)


def synthetic_images(dataset: fo.Dataset, inputs: FilterInputs) -> list[np.ndarray]:
    """The decoded synthetic images, in the order of ``inputs.synthetic_ids``."""
    view = dataset.select(inputs.synthetic_ids, ordered=True)
    return decode_view(view, progress=False, desc="synthetic").arrays


def image_stats(dataset: fo.Dataset, ids: list[str], policy: SizePolicy) -> np.ndarray:
    """Image statistics (:mod:`brain.filters.image_stats`) of the samples ``ids`` under
    ``policy``."""
    view = dataset.select(ids, ordered=True)
    return image_statistics(policy.fit(decode_view(view, progress=False, desc="view").arrays))


def duplicates(inputs: FilterInputs, images: list[np.ndarray]) -> np.ndarray:
    """For each synthetic sample, the position of the earlier one it duplicates, or -1 (exact
    pixel copies always; near copies by embedding + SSIM when the images share a size or the
    run's size policy has one)."""
    images_fitted = None
    if inputs.policy.size is not None or len({a.shape for a in images}) == 1:
        images_fitted = inputs.policy.fit(images)
        if min(images_fitted.shape[1:3]) < 7:  # too small for the SSIM window
            images_fitted = None
    return find_duplicates(images, inputs.synthetic, inputs.real, fitted=images_fitted)


def manual_reasons(dataset: fo.Dataset, ids: list[str], reasons: np.ndarray) -> np.ndarray:
    """``reasons`` with ``manual-pass`` / ``manual-reject`` where a person decided."""
    if MANUAL_FIELD not in dataset.get_field_schema():
        return reasons
    decisions = dict(zip(*dataset.select(ids).values(["id", MANUAL_FIELD]), strict=True))
    manual = np.array([decisions.get(i) for i in ids], dtype=object)
    return np.where(manual != None, "manual-" + manual.astype(str), reasons)  # noqa: E711
