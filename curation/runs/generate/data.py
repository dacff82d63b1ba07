"""What a generate run reads from a dataset (source views, images, shapes, masks) and the
samples it adds (with lineage).

Images reach a generator at one square size: the dataset's size policy (``curate config NAME
--size N``, or ``size`` / ``pad`` given to the run) pads each to a centred square, keeping the
background, and resizes it (``brain.data.fit_image``); without a policy all images must already
share one square size. The files themselves are only read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fiftyone as fo
import numpy as np
from fiftyone import ViewField as F

from brain.images import describe_shapes, read_image
from curation.datasets import builtin_views, resolve_view
from curation.errors import CurateError
from curation.names import COMMON_TRAIN, REAL_TRAIN
from curation.runs.records import run_key
from curation.schema import (
    GROUP_FIELD,
    LABEL_FIELD,
    LINEAGE_FIELD,
    ORIGIN_FIELD,
    SPLIT_FIELD,
    SYNTHETIC,
    make_lineage,
)
from generators.sources import fit_mask, read_images


def real_train(dataset: fo.Dataset) -> fo.DatasetView:
    """The real samples of the train split (never val, test or pool)."""
    return builtin_views(dataset)[REAL_TRAIN]


def by_label(view: fo.DatasetView, rare: str, *, rare_class: bool) -> fo.DatasetView:
    """Samples of ``view`` labelled ``rare`` (``rare_class=False``: labelled, but otherwise)."""
    label = F(f"{LABEL_FIELD}.label")
    return view.match(label == rare) if rare_class else view.match(label.exists() & (label != rare))


def source_view(
    dataset: fo.Dataset, default_source: str, name: str | None
) -> tuple[str, fo.DatasetView]:
    """The name and samples (sorted by id) of the view a run translates: ``name``, else the
    method's default (``pool``, or ``common-train`` when the pool is empty).

    Raises:
        CurateError: an unknown or empty view.
    """
    view_name = name or default_source
    if name is None and view_name == "pool" and not len(resolve_view(dataset, "pool")):
        view_name = COMMON_TRAIN
    sources = resolve_view(dataset, view_name).sort_by("id")
    if len(sources) == 0:
        raise CurateError(f"source view {view_name!r} is empty")
    return view_name, sources


def other_class(dataset: fo.Dataset, fit_sources: str | None, method: str, rare: str):
    """The real train images of the other class, for methods that fit on them (else ``None``).

    Raises:
        CurateError: none there.
    """
    if fit_sources != "other-class":
        return None
    others = by_label(real_train(dataset), rare, rare_class=False).sort_by("id")
    if len(others) == 0:
        raise CurateError(f"{method} needs real train images of another class")
    return others


def fit_sources(capabilities, sources, others, view_name: str, size, pad) -> np.ndarray | None:
    """What ``fit`` gets as ``sources``: the other class, the source domain, or ``None``.

    Raises:
        CurateError: too few train/pool images in the source view for a source-domain method.
    """
    if others is not None:
        return read_images(others.values("filepath"), size, pad)
    if capabilities.fit_sources == "source-domain":
        domain = sources.match(F(SPLIT_FIELD).is_in(["train", "pool"]))
        if len(domain) < capabilities.min_train_images:
            raise CurateError(
                f"{capabilities.method} trains on the train/pool images of the source view: "
                f"{len(domain)} in {view_name!r}, at least {capabilities.min_train_images} needed"
            )
        return read_images(domain.values("filepath"), size, pad)
    return None


def image_shapes(view: fo.DatasetView) -> list[tuple[int, int, int]]:
    """``(H, W, C)`` of each sample of ``view`` from its metadata (reading the image if absent)."""
    paths, heights, widths, channels = view.values(
        ["filepath", "metadata.height", "metadata.width", "metadata.num_channels"]
    )
    shapes = []
    for path, h, w, c in zip(paths, heights, widths, channels, strict=True):
        shapes.append((h, w, c) if None not in (h, w, c) else read_image(path).shape)
    return shapes


def working_shape(
    shapes: Sequence[tuple[int, int, int]], size: int | None, what: str, dataset_name: str
) -> tuple[int, int, int]:
    """The ``(S, S, C)`` that images of ``shapes`` reach the generator at: ``size x size``
    under a size policy, else the one square size they share.

    Raises:
        CurateError: on mixed channel counts, or, without ``size``, on mixed or non-square
            sizes (saying how to set a size policy).
    """
    channels = sorted({shape[2] for shape in shapes})
    if len(channels) > 1:
        raise CurateError(f"{what} have mixed channel counts ({describe_shapes(shapes)})")
    if size is not None:
        return size, size, channels[0]
    hint = (
        f"run `curate config {dataset_name} --size N` to pad them to a square (keeping the "
        "background) and resize them to N x N, or pass `size` N"
    )
    sizes = sorted({shape[:2] for shape in shapes})
    if len(sizes) > 1:
        raise CurateError(
            f"{what} have different shapes ({describe_shapes(shapes)}); {hint}", params=("size",)
        )
    height, width = sizes[0]
    if height != width:
        raise CurateError(f"{what} are {height}x{width}, not square; {hint}", params=("size",))
    return height, width, channels[0]


def read_masks(
    view: fo.DatasetView,
    mask_field: str | None,
    ids: list[str],
    shapes: Sequence[tuple[int, int, int]],
    size: int | None,
    *,
    required: bool = True,
) -> np.ndarray | None:
    """Masks of the samples ``ids`` of ``view`` (whose images have ``shapes``) from the
    Segmentation field ``mask_field``, as ``bool (N, S, S)``: with ``size``, fitted like their
    images (padded with "no region", resized).

    With ``required=False``, ``None`` when no sample has a mask (random boxes are used then).

    Raises:
        CurateError: on a missing field or mask, or a mask of another size than its image.
    """
    if mask_field is None:
        return None
    if not view.has_field(mask_field):
        raise CurateError(f"no field {mask_field!r} with masks on the dataset")
    by_id = dict(zip(*view.values(["id", mask_field]), strict=True))
    found = {i: getattr(by_id.get(i), "get_mask", lambda: None)() for i in ids}
    if not required and all(mask is None for mask in found.values()):
        return None
    masks = []
    for sample_id, shape in zip(ids, shapes, strict=True):
        if found[sample_id] is None:
            raise CurateError(f"sample {sample_id} has no mask in field {mask_field!r}")
        mask = np.asarray(found[sample_id])
        mask = (mask if mask.ndim == 2 else mask[..., 0]) != 0
        if mask.shape != tuple(shape[:2]):
            raise CurateError(
                f"masks in {mask_field!r} are {mask.shape[0]}x{mask.shape[1]} but the images "
                f"are {shape[0]}x{shape[1]}"
            )
        masks.append(mask if size is None else fit_mask(mask, size))
    return np.stack(masks)


def run_samples(dataset: fo.Dataset, run: str) -> fo.DatasetView:
    """The synthetic samples generate run ``run`` added."""
    if LINEAGE_FIELD not in dataset.get_field_schema():
        return dataset.limit(0)
    return dataset.match((F(ORIGIN_FIELD) == SYNTHETIC) & (F(f"{LINEAGE_FIELD}.run") == run))


def existing_pairs(dataset: fo.Dataset, run: str) -> set[tuple[str, int]]:
    """``(source id, seed)`` of the synthetic samples run ``run`` already added."""
    view = run_samples(dataset, run)
    ids, seeds = view.values([f"{LINEAGE_FIELD}.source_id", f"{LINEAGE_FIELD}.seed"])
    return set(zip(ids, seeds, strict=True))


def check_run_images(dataset: fo.Dataset, run: str) -> None:
    """Refuse to continue generate run ``run`` when image files of samples it added are gone
    (a rerun counts those samples as made and would not make them again).

    Raises:
        CurateError: how many are missing, and how to start the run afresh.
    """
    paths = run_samples(dataset, run).values("filepath")
    missing = [path for path in paths if not os.path.isfile(path)]
    if missing:
        raise CurateError(
            f"{len(missing)} of the {len(paths)} images of generate run {run!r} are missing "
            f"(e.g. {missing[0]}); delete the run (`curate runs delete {dataset.name} "
            f"{run_key('generate', run)}`) and generate it again"
        )


def make_sample(
    path: Path,
    shape: tuple[int, int, int],
    *,
    rare: str,
    group: str | None,
    lineage: dict[str, Any],
) -> fo.Sample:
    """A synthetic rare-class train sample for the image at ``path``, with its lineage
    (:func:`curation.schema.make_lineage` fields)."""
    height, width, channels = shape
    sample = fo.Sample(
        filepath=str(path),
        metadata=fo.ImageMetadata(width=width, height=height, num_channels=channels),
    )
    sample[LABEL_FIELD] = fo.Classification(label=rare)
    sample[SPLIT_FIELD] = "train"
    sample[ORIGIN_FIELD] = SYNTHETIC
    sample[GROUP_FIELD] = group
    sample[LINEAGE_FIELD] = make_lineage(**lineage)
    return sample
