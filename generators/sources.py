"""Reading a project dataset for the generators: source views, images, shapes and masks."""

from __future__ import annotations

import numpy as np

from curation.errors import CurateError

RARE_TRAIN, COMMON_TRAIN = "rare-train", "common-train"


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


def read_images(paths: list[str]) -> np.ndarray:
    from curation.images import read_image

    return np.stack([read_image(p) for p in paths])


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


def one_shape(shapes: list[tuple[int, int, int]], what: str) -> tuple[int, int, int]:
    distinct = sorted(set(shapes))
    if len(distinct) != 1:
        listed = ", ".join(f"{h}x{w}x{c}" for h, w, c in distinct[:4])
        raise CurateError(f"{what} have different shapes ({listed}); generators need one size")
    height, width, _ = distinct[0]
    if height != width:
        raise CurateError(f"{what} are {height}x{width}; generators need square images")
    return distinct[0]


def read_masks(
    view, mask_field: str | None, ids: list[str], *, required: bool = True
) -> np.ndarray | None:
    """Masks of the samples ``ids`` of ``view`` from the Segmentation field ``mask_field``.

    With ``required=False``, ``None`` when no sample has a mask (random boxes are used then).
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
    for sample_id in ids:
        if found[sample_id] is None:
            raise CurateError(f"sample {sample_id} has no mask in field {mask_field!r}")
        masks.append(np.asarray(found[sample_id]))
    shapes = {m.shape[:2] for m in masks}
    if len(shapes) != 1:
        raise CurateError(f"masks in field {mask_field!r} have different sizes")
    return np.stack([m if m.ndim == 2 else m[..., 0] for m in masks])
