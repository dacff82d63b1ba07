"""Export a curated view as a training set: an image-folder tree, a FiftyOne dataset, or a CSV.

Exports are atomic (written to a temporary folder beside the target and renamed at the end, see
:mod:`curation.leftovers`), refuse an existing target unless ``overwrite=True`` and a target that
cannot be created, and copy images: sources are never moved.
"""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import fiftyone as fo
from fiftyone import ViewField as F

from curation.datasets import open_dataset, resolve_view
from curation.errors import CurateError
from curation.leftovers import clean_folder_leftovers, replace_folder, temp_folder
from curation.runs.records import list_runs
from curation.schema import (
    GROUP_FIELD,
    LABEL_FIELD,
    LINEAGE_FIELD,
    LINEAGE_SUBFIELDS,
    ORIGIN_FIELD,
    REAL,
    SPLIT_FIELD,
    SYNTHETIC,
)
from curation.tags import filter_keys_in_tags, pass_tag

FORMATS = ("imagefolder", "fiftyone", "csv")
CSV_NAME = "manifest.csv"
CSV_COLUMNS = ["filepath", "label", "split", "origin", "group", "tags"] + [
    f"lineage_{name}" for name in LINEAGE_SUBFIELDS
]


def curated_view(dataset: fo.Dataset, filter_key: str) -> fo.DatasetView:
    """Real train samples plus the synthetic samples that passed filter ``filter_key``."""
    real_train = (F(ORIGIN_FIELD) == REAL) & (F(SPLIT_FIELD) == "train")
    passing = (F(ORIGIN_FIELD) == SYNTHETIC) & F("tags").contains(pass_tag(filter_key))
    return dataset.match(real_train | passing)


def _default_filter_key(dataset: fo.Dataset) -> str:
    keys = filter_keys_in_tags(dataset)
    if len(keys) != 1:
        found = ", ".join(keys) or "none"
        raise CurateError(f"say which filter to export with --filter (filter runs found: {found})")
    return keys[0]


def _check_filter_key(dataset: fo.Dataset, key: str) -> str:
    """``key`` if a filter run of that key is on ``dataset`` (a run record or its tags)."""
    known = sorted(set(filter_keys_in_tags(dataset)) | set(list_runs(dataset, "filter")))
    if key not in known:
        raise CurateError(
            f"no filter run {key!r} on dataset {dataset.name!r}; "
            f"filter keys: {', '.join(known) or 'none'}"
        )
    return key


def _missing_parents(out: Path) -> list[Path]:
    """The folders above ``out`` that do not exist yet, nearest first.

    Raises:
        CurateError: if the nearest existing one is not a writable folder.
    """
    missing, parent = [], out.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    if not parent.is_dir():
        raise CurateError(f"cannot create {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CurateError(f"cannot create {out}: {parent} is not writable")
    return missing


def _make_staging(out: Path, missing: list[Path]) -> Path:
    """Create the folders above ``out`` and a hidden staging folder beside it.

    Raises:
        CurateError: if they cannot be created (nothing is left behind then).
    """
    staging = temp_folder(out)
    try:
        staging.mkdir(parents=True)
    except OSError as error:
        _remove_empty(missing)
        raise CurateError(f"cannot create {out}: {error.strerror or error}") from None
    return staging


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # nearest first
        try:
            folder.rmdir()
        except OSError:
            return


def _unique_name(filepath: str, used: set[str]) -> str:
    stem, suffix = os.path.splitext(os.path.basename(filepath))
    name, n = f"{stem}{suffix}", 1
    while name in used:
        n += 1
        name = f"{stem}-{n}{suffix}"
    used.add(name)
    return name


def _write_csv(view: fo.DatasetView, folder: Path) -> None:
    images = folder / "images"
    images.mkdir()
    used: set[str] = set()
    fields = ["filepath", f"{LABEL_FIELD}.label", SPLIT_FIELD, ORIGIN_FIELD, GROUP_FIELD, "tags"]
    lineage = [f"{LINEAGE_FIELD}.{name}" for name in LINEAGE_SUBFIELDS]
    values = view.values(fields + lineage)
    with (folder / CSV_NAME).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in zip(*values, strict=True):
            filepath, label, split, origin, group, tags, *lineage_values = row
            target = Path("images") / _unique_name(filepath, used)
            shutil.copy2(filepath, folder / target)
            writer.writerow(
                [target.as_posix(), label, split, origin, group, ";".join(tags or [])]
                + ["" if v is None else v for v in lineage_values]
            )


def _write(view: fo.DatasetView, folder: Path, fmt: str) -> None:
    if fmt == "imagefolder":
        options = {
            "dataset_type": fo.types.ImageClassificationDirectoryTree,
            "label_field": LABEL_FIELD,
        }
    elif fmt == "fiftyone":
        options = {"dataset_type": fo.types.FiftyOneDataset}
    else:
        _write_csv(view, folder)
        return
    # the staging folder is ours and empty: overwrite=True keeps FiftyOne from warning about it
    view.export(
        export_dir=str(folder), export_media=True, progress=False, overwrite=True, **options
    )


def export_samples(
    view: fo.DatasetView, out: str | Path, *, fmt: str = "imagefolder", overwrite: bool = False
) -> dict:
    """Export the labelled samples of ``view`` to ``out`` (see :func:`export_view` for formats).

    Returns:
        ``{"out", "format", "n_samples", "counts"}``.
    """
    if fmt not in FORMATS:
        raise CurateError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise CurateError(f"{out} exists; use --overwrite to replace it")
    missing = _missing_parents(out)
    selected = view.exists(f"{LABEL_FIELD}.label")
    if len(selected) == 0:
        raise CurateError("the view to export has no labelled samples")
    clean_folder_leftovers(out.parent, out.name)
    staging = _make_staging(out, missing)
    try:
        _write(selected, staging, fmt)
        replace_folder(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(missing)
        raise
    counts = selected.count_values(f"{LABEL_FIELD}.label")
    return {"out": str(out), "format": fmt, "n_samples": len(selected), "counts": counts}


def export_view(
    name: str,
    out: str | Path,
    *,
    fmt: str = "imagefolder",
    view: str | None = None,
    filter_key: str | None = None,
    overwrite: bool = False,
) -> dict:
    """Export a view of dataset ``name`` to ``out``.

    Args:
        name: the project dataset.
        out: the folder to create.
        fmt: ``imagefolder`` (``ImageClassificationDirectoryTree``), ``fiftyone`` (a FiftyOne
            dataset export with tags and every field) or ``csv`` (``manifest.csv`` with lineage,
            images copied under ``images/``; re-ingest it with ``curate ingest csv``).
        view: a saved or built-in view name; default: real train plus the synthetic samples that
            passed ``filter_key``.
        filter_key: the filter run whose passing samples join real train (default: the only
            filter run on the dataset).
        overwrite: replace an existing ``out``.

    Returns:
        ``{"out", "format", "n_samples", "counts"}``.
    """
    if view is not None and filter_key is not None:
        raise CurateError("give --view or --filter, not both")
    if fmt not in FORMATS:
        raise CurateError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    if Path(out).exists() and not overwrite:
        raise CurateError(f"{out} exists; use --overwrite to replace it")
    _missing_parents(Path(out))
    dataset = open_dataset(name)
    if view is not None:
        selected = resolve_view(dataset, view)
    elif filter_key is not None:
        selected = curated_view(dataset, _check_filter_key(dataset, filter_key))
    else:
        selected = curated_view(dataset, _default_filter_key(dataset))
    return export_samples(selected, out, fmt=fmt, overwrite=overwrite)
