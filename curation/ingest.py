"""Ingest: validate :class:`~curation.readers.Record` lists and add them to a project dataset.

Everything is checked (paths, duplicates, labels, every image decoded, the splits and shapes of
the result, see :mod:`curation.ingest_checks`) before anything is written, so bad input leaves
existing datasets and files unchanged. A new or overwritten dataset is built under a temporary
name and renamed at the end; an append records what it adds until it is done. What a killed
ingest leaves behind is settled by the next ingest of that name (see :mod:`curation.leftovers`).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import fiftyone as fo
import numpy as np

from brain.errors import InputError
from brain.images import check_max_pixels, check_min_side, read_image, to_uint8, write_png
from brain.progress import progress_bar
from brain.splits import DEFAULT_FRACTIONS, check_fractions, stratified_group_split
from curation.datasets import check_name, dataset_exists, open_dataset
from curation.errors import CurateError
from curation.ingest_checks import check_ingested
from curation.leftovers import clean_leftovers, pending_append, temp_dataset_name
from curation.media import media_root
from curation.readers import Record, read_csv, read_directory, read_npz, read_pool
from curation.schema import (
    FINE_LABEL_FIELD,
    GROUP_FIELD,
    LABEL_FIELD,
    LABELLED_SPLITS,
    ORIGIN_FIELD,
    ORIGINS,
    OTHER_LABEL,
    REAL,
    SPLIT_FIELD,
    SPLITS,
    SYNTHETIC,
    ensure_schema,
    make_lineage,
    project_info,
    set_project_info,
)


@dataclass
class IngestReport:
    """What an ingest did."""

    dataset: str
    added: int
    skipped: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)


def _check_target(name: str, overwrite: bool, append: bool) -> None:
    check_name(name)
    if overwrite and append:
        raise CurateError("--overwrite and --append exclude each other")
    if dataset_exists(name) and not (overwrite or append):
        raise CurateError(f"dataset {name!r} exists; use --overwrite to replace it or --append")
    if append and not dataset_exists(name):
        raise CurateError(f"dataset {name!r} does not exist, nothing to --append to")


def _check_duplicates(records: Sequence[Record], existing: set[str]) -> None:
    seen: set[str] = set()
    for record in records:
        if record.filepath in seen:
            raise CurateError(f"duplicate file path: {record.filepath}")
        if record.filepath in existing:
            raise CurateError(f"file already in the dataset: {record.filepath}")
        seen.add(record.filepath)


def _apply_binary(records: Sequence[Record], rare: str | None) -> None:
    if rare is None:
        raise CurateError("--binary needs --rare LABEL")
    for record in records:
        if record.label is not None and record.label != rare:
            record.fine = record.fine or record.label  # the original label stays as fine label
            record.label = OTHER_LABEL
        elif record.label is not None:
            record.fine = record.fine or record.label


def _choose_rare(records: Sequence[Record], rare: str | None, recorded: str | None) -> str | None:
    counts = Counter(r.label for r in records if r.label is not None)
    if rare is not None and recorded is not None and rare != recorded:
        raise CurateError(f"the dataset's rare class is {recorded!r}, not {rare!r}")
    rare = rare if rare is not None else recorded
    if not counts:
        return rare
    if rare is None:
        return min(sorted(counts), key=counts.__getitem__)  # least frequent label
    if rare not in counts and recorded is None:
        raise CurateError(
            f"rare class {rare!r} has no samples; labels: {', '.join(sorted(counts))}"
        )
    return rare


def _decode_all(
    records: list[Record], skip_bad: bool, max_pixels: int | None = None
) -> tuple[list[Record], list, list[str], list[str]]:
    """Decode every image once; returns the good records, their shapes, the skipped paths and
    the files whose alpha channel the loader dropped. An image above ``max_pixels`` is refused
    (also with ``skip_bad``: it is readable, the caller asked for no such image)."""
    good, shapes, bad, alpha = [], [], [], []
    checking = progress_bar(records, desc="checking images", unit="img", leave=False)
    for record in checking:  # a bar on a terminal only
        try:
            if record.array is not None:
                record.array = _npz_array(record.array)
                shape = record.array.shape
            else:
                dropped: list[bool] = []
                shape = read_image(record.filepath, alpha=dropped).shape
                if dropped[0]:
                    alpha.append(record.filepath)
            check_min_side(shape, record.filepath)
        except InputError as error:
            if not skip_bad:
                extra = "; use --skip-bad to skip unreadable images" if record.array is None else ""
                raise CurateError(f"{error}{extra}") from None
            bad.append(record.filepath)
            continue
        _check_max_pixels(shape, record, max_pixels)
        good.append(record)
        shapes.append(shape)
    if not good:
        raise CurateError("no readable images to ingest")
    good_paths = {record.filepath for record in good}
    return good, shapes, bad, [path for path in alpha if path in good_paths]


def _check_max_pixels(shape: tuple, record: Record, max_pixels: int | None) -> None:
    """Refuse an image above ``max_pixels`` (``None``: no limit), naming it and its size."""
    if max_pixels is None:
        return
    try:
        check_max_pixels(shape, record.filepath, max_pixels)
    except InputError as error:
        raise CurateError(error.template, params=error.params) from None


def _npz_array(array: np.ndarray) -> np.ndarray:
    """An in-memory image as ``uint8`` ``(H, W, C)`` with 1 or 3 channels (what PNG keeps)."""
    array = to_uint8(array)
    array = array if array.ndim == 3 else array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise CurateError(f"in-memory images need 1 or 3 channels, got shape {array.shape}")
    return array


def _assign_splits(
    records: list[Record],
    origin: str,
    seed: int,
    fractions: tuple[float, float, float],
    known_groups: dict[str, str],
) -> dict | None:
    """Fill ``record.split`` where the input gave none; returns the split record or ``None``."""
    given = [r.split is not None for r in records]
    if all(given):
        for record in records:
            if record.split not in SPLITS:
                raise CurateError(f"unknown split {record.split!r}; splits: {', '.join(SPLITS)}")
        return None
    if any(given):
        raise CurateError("some rows have a split and others not: give all splits or none")
    if origin == SYNTHETIC:
        for record in records:
            record.split = "train"  # synthetic samples are training candidates
        return None
    labelled = [r for r in records if r.label is not None]
    for record in records:
        if record.label is None:
            record.split = "pool"
    fresh = [r for r in labelled if r.group is None or r.group not in known_groups]
    for record in labelled:
        if record.group is not None and record.group in known_groups:
            record.split = known_groups[record.group]  # a group never spans two splits
    if fresh:
        groups = [r.group if r.group is not None else f"#{i}" for i, r in enumerate(fresh)]
        splits = stratified_group_split(
            [r.label for r in fresh], groups, fractions=fractions, seed=seed
        )
        for record, split in zip(fresh, splits, strict=True):
            record.split = split
    by_group = any(r.group is not None for r in labelled)
    return {"seed": seed, "fractions": list(fractions), "by_group": by_group}


def _make_sample(record: Record, shape: tuple, origin: str, source: str) -> fo.Sample:
    height, width, channels = shape
    fields = {SPLIT_FIELD: record.split, ORIGIN_FIELD: origin, GROUP_FIELD: record.group}
    if record.label is not None:
        fields[LABEL_FIELD] = fo.Classification(label=record.label)
    if record.fine is not None:
        fields[FINE_LABEL_FIELD] = fo.Classification(label=record.fine)
    if origin == SYNTHETIC:
        fields["lineage"] = make_lineage(
            source_id=None,
            source_filepath=None,
            generator="external",
            run=source,
            checkpoint_digest=None,
            seed=0,
            params={},
        )
    # fields as constructor arguments: about 20% faster than setting them one by one
    return fo.Sample(
        filepath=record.filepath,
        metadata=fo.ImageMetadata(width=width, height=height, num_channels=channels),
        **fields,
    )


def _existing_state(name: str, append: bool) -> tuple[set[str], dict[str, str], dict]:
    if not append:
        return set(), {}, {}
    dataset = open_dataset(name)
    filepaths = set(dataset.values("filepath"))
    group_split = {}
    for group, split in zip(*dataset.values([GROUP_FIELD, SPLIT_FIELD]), strict=True):
        if group is not None and split in LABELLED_SPLITS:
            group_split[group] = split
    return filepaths, group_split, project_info(dataset)


def ingest_records(
    records: list[Record],
    name: str,
    *,
    source: str,
    rare: str | None = None,
    origin: str = REAL,
    binary: bool = False,
    overwrite: bool = False,
    append: bool = False,
    skip_bad: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    max_pixels: int | None = None,
) -> IngestReport:
    """Validate ``records`` and add them to dataset ``name``.

    Args:
        records: what a reader of :mod:`curation.readers` returned.
        name: the project dataset.
        source: a description of where the records came from (kept in the project record).
        rare: the rare (positive) label; default: the dataset's, else the least frequent label.
        origin: ``real`` or ``synthetic`` (images generated elsewhere).
        binary: map every label but ``rare`` to ``other``.
        overwrite: replace an existing dataset of that name.
        append: add to an existing dataset (e.g. a pool or synthetic images made elsewhere).
        skip_bad: skip unreadable images (listed in the report) instead of refusing.
        seed: seed of the stratified group split made when the input has no split.
        fractions: train/val/test fractions of that split.
        max_pixels: refuse images of more pixels (``None``: none refused; images above
            :data:`brain.images.LARGE_PIXELS` are then warned about).

    Raises:
        CurateError: on any bad input; nothing is changed then.
    """
    if origin not in ORIGINS:
        raise CurateError(f"unknown origin {origin!r}; origins: {', '.join(ORIGINS)}")
    if not records:
        raise CurateError("nothing to ingest")
    if max_pixels is not None and max_pixels < 1:
        raise CurateError(
            f"`max_pixels` must be at least 1, got {max_pixels}", params=("max_pixels",)
        )
    fractions = check_fractions(fractions)
    cleaned = clean_leftovers(check_name(name))
    _check_target(name, overwrite, append)
    existing, known_groups, info = _existing_state(name, append)
    _check_duplicates(records, existing)
    if binary:
        _apply_binary(records, rare)
    implicit_rare = rare is None and info.get("rare_class") is None
    rare = _choose_rare(records, rare, info.get("rare_class"))
    records, shapes, skipped, alpha = _decode_all(list(records), skip_bad, max_pixels)
    split_record = _assign_splits(records, origin, seed, fractions, known_groups)
    warnings = check_ingested(
        records,
        shapes,
        origin=origin,
        rare=rare,
        implicit_rare=implicit_rare,
        made_split=split_record is not None,
        existing=open_dataset(name) if append else None,
        dropped_alpha=alpha,
    )

    for record in records:
        if record.array is not None:
            write_png(record.array, record.filepath)
    with _gc_paused():
        made = _add(name, records, shapes, origin, source, info, rare, split_record, append)
    added, counts = made
    return IngestReport(name, added, skipped, counts, warnings, cleaned)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the samples are built and inserted: each full
    collection would rescan every live sample (about 15% of an ingest of 30k images, measured
    by bench/bench_scale.py); reference counting still frees what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _add(name, records, shapes, origin, source, info, rare, split_record, append):
    """Build the samples and add them (a new dataset, or an append); returns ``(added,
    counts)``."""
    samples = [_make_sample(r, s, origin, source) for r, s in zip(records, shapes, strict=True)]
    labels = sorted(
        {r.label for r in records if r.label is not None} | set(info.get("classes", []))
    )
    sources = [*info.get("sources", []), {"kind": source, "origin": origin, "n": len(samples)}]
    updates = {"rare_class": rare, "classes": labels, "sources": sources}
    if split_record is not None and "split" not in info:
        updates["split"] = split_record

    if append:
        dataset = open_dataset(name)
        with pending_append(name, [s.filepath for s in samples]) as token:
            dataset.add_samples(samples, progress=False)
            sources[-1]["append"] = token  # marks the append done (see curation.leftovers)
            set_project_info(dataset, **updates)
    else:
        _build_and_swap(name, samples, updates)
    counts = Counter(f"{r.split}/{r.label}" for r in records)
    return len(samples), dict(sorted(counts.items()))


def _build_and_swap(name: str, samples: list[fo.Sample], updates: dict) -> None:
    """Build the dataset under a temporary name, then put it in place of ``name``.

    The temporary dataset becomes persistent once complete: a killed run's incomplete build is
    removed by the next ingest, a complete one whose target is gone is renamed into place.
    """
    dataset = fo.Dataset(temp_dataset_name(name))
    try:
        ensure_schema(dataset)
        dataset.add_samples(samples, progress=False)
        set_project_info(dataset, **updates)
        dataset.persistent = True
    except BaseException:
        dataset.delete()
        raise
    if dataset_exists(name):
        fo.load_dataset(name).delete()
    dataset.name = name


def npz_media(name: str, path: str | Path) -> Path:
    """Where images of an ``.npz`` ingest are written (under the dataset's media root)."""
    return media_root(name) / "npz" / Path(path).stem


def ingest_dir(path: str | Path, name: str, **options) -> IngestReport:
    """Ingest a class-per-folder tree (see :func:`curation.readers.read_directory`)."""
    return ingest_records(read_directory(path), name, source=f"dir:{path}", **options)


def ingest_csv(
    path: str | Path,
    name: str,
    *,
    path_column: str = "filepath",
    label_column: str = "label",
    split_column: str | None = "split",
    group_column: str | None = "group",
    fine_column: str | None = None,
    **options,
) -> IngestReport:
    """Ingest a CSV manifest (see :func:`curation.readers.read_csv`)."""
    records = read_csv(
        path,
        path_column=path_column,
        label_column=label_column,
        split_column=split_column,
        group_column=group_column,
        fine_column=fine_column,
    )
    return ingest_records(records, name, source=f"csv:{path}", **options)


def ingest_npz(
    path: str | Path, name: str, *, class_names: list[str] | None = None, **options
) -> IngestReport:
    """Ingest a MedMNIST-style ``.npz``; its images are written once as PNG under the dataset's
    media folder (see :func:`curation.readers.read_npz`)."""
    check_name(name)
    records = read_npz(path, npz_media(name, path), class_names=class_names)
    return ingest_records(records, name, source=f"npz:{path}", **options)


def ingest_pool(path: str | Path, name: str, **options) -> IngestReport:
    """Ingest unlabelled images as the ``pool`` split (usually with ``append=True``)."""
    return ingest_records(read_pool(path), name, source=f"pool:{path}", **options)
