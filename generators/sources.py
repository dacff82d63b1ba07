"""Reading a project dataset for the generators: source views, images, shapes and masks.

Images reach a generator at one square size: the dataset's size policy (``curate config NAME
--size N``, or ``size`` / ``pad`` given to the run) pads each to a centred square, keeping the
background, and resizes it (``brain.data.fit_image``); without a policy all images must already
share one square size. The files themselves are only read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from curation.errors import CurateError

RARE_TRAIN, COMMON_TRAIN = "rare-train", "common-train"
#: At most this many distinct shapes are named in an error.
LISTED_SHAPES = 4


def real_train(dataset):
    """The real samples of the train split (never val, test or pool)."""
    from curation.datasets import builtin_views

    return builtin_views(dataset)["real-train"]


def by_label(view, rare: str, *, rare_class: bool):
    """Samples of ``view`` labelled ``rare`` (``rare_class=False``: labelled, but otherwise)."""
    from fiftyone import ViewField as F

    from curation.schema import LABEL_FIELD

    label = F(f"{LABEL_FIELD}.label")
    return view.match(label == rare) if rare_class else view.match(label.exists() & (label != rare))


def read_images(paths: Sequence[str], size: int | None = None, pad: str = "border") -> np.ndarray:
    """The images at ``paths`` as one ``uint8`` ``(N, H, W, C)`` array; with ``size``, each padded
    to a centred square with ``pad`` and resized to ``size x size`` (the size policy)."""
    from curation.images import read_image

    arrays = [read_image(p) for p in paths]
    if size is None:
        return np.stack(arrays)
    from brain.data import stack_images

    return stack_images(arrays, size, pad).permute(0, 2, 3, 1).numpy()


def image_shapes(view) -> list[tuple[int, int, int]]:
    """``(H, W, C)`` of each sample of ``view`` from its metadata (reading the image if absent)."""
    from curation.images import read_image

    paths, heights, widths, channels = view.values(
        ["filepath", "metadata.height", "metadata.width", "metadata.num_channels"]
    )
    shapes = []
    for path, h, w, c in zip(paths, heights, widths, channels, strict=True):
        shapes.append((h, w, c) if None not in (h, w, c) else read_image(path).shape)
    return shapes


def _listed(shapes: Sequence[tuple[int, int, int]]) -> str:
    from curation.images import describe_shapes

    parts = describe_shapes(shapes).split(", ")
    more = len(parts) - LISTED_SHAPES
    return ", ".join(parts[:LISTED_SHAPES]) + (f", {more} more" if more > 0 else "")


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
        raise CurateError(f"{what} have mixed channel counts ({_listed(shapes)})")
    if size is not None:
        return size, size, channels[0]
    hint = (
        f"run `curate config {dataset_name} --size N` to pad them to a square (keeping the "
        "background) and resize them to N x N, or pass --size N"
    )
    sizes = sorted({shape[:2] for shape in shapes})
    if len(sizes) > 1:
        raise CurateError(f"{what} have different shapes ({_listed(shapes)}); {hint}")
    height, width = sizes[0]
    if height != width:
        raise CurateError(f"{what} are {height}x{width}, not square; {hint}")
    return height, width, channels[0]


def read_masks(
    view,
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


def fit_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """A ``bool (H, W)`` mask padded with ``False`` to a centred square and resized to
    ``size x size`` (as ``brain.data.fit_image`` fits its image; a pixel stays in the region
    where at least half of it was)."""
    from brain.data import fit_image

    image = (mask.astype(np.uint8) * 255)[..., None]
    return fit_image(image, size, "constant:0")[0].numpy() >= 128
