"""Export a curated view as a training set: an image-folder tree, a FiftyOne dataset, or a CSV.

Every export holds ``manifest.csv``: each exported file (its path inside the export) with its
label, split, origin (real or synthetic), group, tags and lineage (the generator run, the
source sample, ...), so a training set says which of its images are synthetic and where they
came from; the CSV export is that manifest with the images under ``images/``. Exports are
atomic (written to a temporary folder beside the target and renamed at the end, see
:mod:`curation.leftovers`), refuse an existing target unless ``overwrite=True`` and a target that
cannot be created, and copy images: sources are never moved.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections import defaultdict
from pathlib import Path

import fiftyone as fo
from fiftyone import ViewField as F

from curation.datasets import open_dataset, resolve_view
from curation.errors import CurateError
from curation.leftovers import clean_folder_leftovers, replace_folder, temp_folder
from curation.media import check_out_folder
from curation.names import pass_tag
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
from curation.tags import filter_keys_in_tags

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


def _manifest_rows(view: fo.DatasetView) -> list[tuple]:
    """Per sample: id, source filepath, label, split, origin, group, tags, lineage values."""
    fields = [
        "id",
        "filepath",
        f"{LABEL_FIELD}.label",
        SPLIT_FIELD,
        ORIGIN_FIELD,
        GROUP_FIELD,
        "tags",
    ]
    lineage = [f"{LINEAGE_FIELD}.{name}" for name in LINEAGE_SUBFIELDS]
    return list(zip(*view.values(fields + lineage), strict=True))


def _check_folder_labels(labels: list[str]) -> None:
    """Refuse labels that cannot name a folder of an image-folder tree."""
    for label in labels:
        if label in ("", ".", "..", CSV_NAME) or any(c in label for c in "/\\\0"):
            raise CurateError(
                f"label {label!r} cannot name a folder of an image-folder tree; "
                "export with --format csv"
            )


def _copy_images(rows: list[tuple], folder: Path, by_label: bool) -> dict[str, str]:
    """Copy each sample's image into ``folder`` (under its label, or under ``images/``);
    returns sample id -> the copy's path relative to ``folder``."""
    used: dict[str, set[str]] = defaultdict(set)
    files = {}
    for sample_id, filepath, label, *_ in rows:
        sub = label if by_label else "images"
        target = Path(sub) / _unique_name(filepath, used[sub])
        (folder / sub).mkdir(exist_ok=True)
        shutil.copy2(filepath, folder / target)
        files[sample_id] = target.as_posix()
    return files


def _exported_files(folder: Path) -> dict[str, str]:
    """Sample id -> media path of a FiftyOne dataset export in ``folder`` (``samples.json``)."""
    samples = json.loads((folder / "samples.json").read_text())["samples"]
    files = {}
    for sample in samples:
        sample_id = sample["_id"]
        files[sample_id.get("$oid") if isinstance(sample_id, dict) else str(sample_id)] = sample[
            "filepath"
        ]
    return files


def _write_manifest(folder: Path, rows: list[tuple], files: dict[str, str]) -> None:
    """``manifest.csv``: each exported file with its label, split, origin, group, tags and
    lineage (generator run, source sample, ...)."""
    with (folder / CSV_NAME).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for sample_id, _, label, split, origin, group, tags, *lineage in rows:
            writer.writerow(
                [files[sample_id], label, split, origin, group, ";".join(tags or [])]
                + [_cell(v) for v in lineage]
            )


def _cell(value) -> str:
    """A lineage value as a CSV cell (its parameters as JSON)."""
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _write(view: fo.DatasetView, folder: Path, fmt: str) -> None:
    rows = _manifest_rows(view)
    if fmt == "fiftyone":
        # the staging folder is ours and empty: overwrite=True keeps FiftyOne from warning
        view.export(
            export_dir=str(folder),
            dataset_type=fo.types.FiftyOneDataset,
            export_media=True,
            progress=False,
            overwrite=True,
        )
        files = _exported_files(folder)
    else:
        files = _copy_images(rows, folder, by_label=fmt == "imagefolder")
    _write_manifest(folder, rows, files)


def export_samples(
    view: fo.DatasetView, out: str | Path, *, fmt: str = "imagefolder", overwrite: bool = False
) -> dict:
    """Export the labelled samples of ``view`` to ``out`` (see :func:`export_view` for formats).

    Returns:
        ``{"out", "format", "n_samples", "counts"}``.
    """
    if fmt not in FORMATS:
        raise CurateError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    out = check_out_folder(out, fo.load_dataset(view.dataset_name))
    if out.exists() and not overwrite:
        raise CurateError(f"{out} exists; use --overwrite to replace it")
    missing = _missing_parents(out)
    selected = view.exists(f"{LABEL_FIELD}.label")
    if len(selected) == 0:
        raise CurateError("the view to export has no labelled samples")
    if fmt == "imagefolder":
        _check_folder_labels(selected.distinct(f"{LABEL_FIELD}.label"))
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
        out: the folder to create: never the current directory, the dataset's media folder or
            a folder above them, nor a folder holding, inside or above its images
            (:func:`curation.names.check_out_folder`).
        fmt: ``imagefolder`` (``<label>/<image>``, FiftyOne's
            ``ImageClassificationDirectoryTree``), ``fiftyone`` (a FiftyOne dataset export with
            tags and every field) or ``csv`` (images copied under ``images/``); each with
            ``manifest.csv`` (file, label, split, origin, group, tags, lineage), which
            ``curate ingest csv`` re-ingests.
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
    dataset = open_dataset(name)
    if check_out_folder(out, dataset).exists() and not overwrite:
        raise CurateError(f"{out} exists; use --overwrite to replace it")
    _missing_parents(Path(out))
    if view is not None:
        selected = resolve_view(dataset, view)
    elif filter_key is not None:
        selected = curated_view(dataset, _check_filter_key(dataset, filter_key))
    else:
        selected = curated_view(dataset, _default_filter_key(dataset))
    return export_samples(selected, out, fmt=fmt, overwrite=overwrite)
