"""Checks of the data as a whole, run by ingest once every image is decoded and every sample has
a split, so that what would make a later command fail is said at ingest.

- The rare class needs a real sample in each of ``train``, ``val`` and ``test``: ``curate train``
  refuses otherwise. Another label missing from a split is only warned about (often a typo).
- Images need one channel count: ``curate train`` refuses mixed counts.
- Mixed image sizes are warned about: ``curate train`` then needs ``--size``.
- Images whose alpha channel the loader drops are counted (see :mod:`brain.images`).
- Images above :data:`brain.images.LARGE_PIXELS` pixels are warned about once, naming the
  largest (they are read as they are, slowly and with much memory; ``max_pixels`` refuses them).

For a new (or replaced) dataset, mixed channel counts are an error, and so is a rare class
missing from a split that synthcurate made (add samples of it or choose another rare class).
Splits given by the input (split folders, a split column, an ``.npz``) are kept as they are, so
there, and whenever appending (the user may be completing the dataset), these are warnings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import fiftyone as fo

from brain.images import LARGE_PIXELS, describe_shapes
from curation.errors import CurateError
from curation.readers import Record
from curation.schema import (
    LABEL_FIELD,
    LABELLED_SPLITS,
    ORIGIN_FIELD,
    REAL,
    SPLIT_FIELD,
)

Shape = tuple[int, int, int]


def split_counts(rows: Iterable[tuple[str | None, str | None]]) -> dict[str, Counter]:
    """``label -> Counter(split -> n)`` over ``(label, split)`` pairs of labelled samples in the
    train, val and test splits."""
    counts: dict[str, Counter] = {}
    for label, split in rows:
        if label is not None and split in LABELLED_SPLITS:
            counts.setdefault(label, Counter())[split] += 1
    return counts


def _per_split(counts: Counter) -> str:
    return ", ".join(f"{split} {counts[split]}" for split in LABELLED_SPLITS)


def rare_class_problem(counts: dict[str, Counter], rare: str | None, *, implicit: bool) -> str:
    """What is wrong with the rare class's presence in the splits ('' if nothing)."""
    if rare is None or not counts:
        return ""
    found = counts.get(rare, Counter())
    missing = [split for split in LABELLED_SPLITS if not found[split]]
    if not missing:
        return ""
    how = " (the least frequent label; choose another with --rare)" if implicit else ""
    return (
        f"rare class {rare!r}{how} has {_per_split(found)} real samples: none in "
        f"{' and '.join(missing)}, and `curate train` needs one in each of train, val and test"
    )


def label_warnings(counts: dict[str, Counter], rare: str | None) -> list[str]:
    """A warning per other label that is missing from a split."""
    warnings = []
    for label in sorted(counts):
        missing = [split for split in LABELLED_SPLITS if not counts[label][split]]
        if label != rare and missing:
            warnings.append(
                f"label {label!r} has {_per_split(counts[label])} real samples "
                f"(none in {' and '.join(missing)})"
            )
    return warnings


def shape_problems(shapes: Sequence[Shape]) -> tuple[str, str]:
    """``(mixed channel counts, mixed sizes)`` descriptions ('' where there is no problem)."""
    channels = {shape[2] for shape in shapes}
    sizes = {tuple(shape[:2]) for shape in shapes}
    described = describe_shapes(shapes)
    mixed_channels = (
        f"images have mixed channel counts ({described}); `curate train` refuses mixed counts"
        if len(channels) > 1
        else ""
    )
    mixed_sizes = (
        f"images have mixed sizes ({described}); `curate train` needs --size N for them"
        if len(sizes) > 1
        else ""
    )
    return mixed_channels, mixed_sizes


def alpha_warning(dropped: Sequence[str]) -> str:
    """A warning naming how many image files had an alpha channel (``dropped``: their paths,
    found when ingest decoded them; see :func:`brain.images.has_alpha`)."""
    if not dropped:
        return ""
    return (
        f"{len(dropped)} image(s) have an alpha channel, dropped when read (RGBA is read as RGB, "
        f"grayscale + alpha as grayscale), e.g. {dropped[0]}"
    )


def large_image_warning(paths: Sequence[str], shapes: Sequence[Shape]) -> str:
    """A warning on the images above :data:`~brain.images.LARGE_PIXELS`, naming the largest
    with its size (``""`` when there is none)."""
    large = [(h * w, path, h, w) for path, (h, w, _) in zip(paths, shapes, strict=True)]
    large = [entry for entry in large if entry[0] > LARGE_PIXELS]
    if not large:
        return ""
    pixels, path, height, width = max(large)
    size = f"{height}x{width} pixels ({pixels:,})"
    if len(large) == 1:
        said = f"image {path} is {size}, above the limit of {LARGE_PIXELS:,}"
    else:
        said = f"{len(large)} images are above {LARGE_PIXELS:,} pixels, the largest {path}: {size}"
    return f"{said}; read as is (slowly, with much memory); --max-pixels N refuses images above N"


def _existing(dataset: fo.Dataset | None) -> tuple[list[tuple], list[Shape]]:
    """``(label, split)`` pairs of the real samples and the image shapes already in
    ``dataset``."""
    if dataset is None:
        return [], []
    labels, splits, origins, heights, widths, channels = dataset.values(
        [
            f"{LABEL_FIELD}.label",
            SPLIT_FIELD,
            ORIGIN_FIELD,
            "metadata.height",
            "metadata.width",
            "metadata.num_channels",
        ]
    )
    rows = [(lab, s) for lab, s, o in zip(labels, splits, origins, strict=True) if o == REAL]
    shapes = [s for s in zip(heights, widths, channels, strict=True) if None not in s]
    return rows, shapes


def check_ingested(
    records: Sequence[Record],
    shapes: Sequence[Shape],
    *,
    origin: str,
    rare: str | None,
    implicit_rare: bool,
    made_split: bool,
    existing: fo.Dataset | None,
    dropped_alpha: Sequence[str] = (),
) -> list[str]:
    """Check the dataset an ingest makes (``records`` with their decoded ``shapes``, plus the
    samples of ``existing`` when appending; ``dropped_alpha``: the files whose alpha channel was
    dropped when decoded); returns the warnings.

    Raises:
        CurateError: for a new dataset (``existing`` is ``None``) whose images have mixed channel
            counts, or whose rare class misses a split that synthcurate made (``made_split``).
    """
    old_rows, old_shapes = _existing(existing)
    new_rows = [(r.label, r.split) for r in records] if origin == REAL else []
    counts = split_counts([*old_rows, *new_rows])
    rare_problem = rare_class_problem(counts, rare, implicit=implicit_rare)
    mixed_channels, mixed_sizes = shape_problems([*old_shapes, *shapes])
    if existing is None:
        errors = [mixed_channels, rare_problem if made_split else ""]
        if any(errors):
            raise CurateError("; ".join(e for e in errors if e))
    found = [rare_problem, mixed_channels, *label_warnings(counts, rare)]
    large = large_image_warning([r.filepath for r in records], shapes)
    return [w for w in (*found, mixed_sizes, alpha_warning(dropped_alpha), large) if w]
