"""Readers that turn a folder tree, a CSV manifest, a MedMNIST ``.npz`` or a pool folder into
:class:`Record` lists for :func:`curation.ingest.ingest_records`. Readers never write."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brain.images import is_image_file
from curation.errors import CurateError
from curation.schema import SPLITS


@dataclass
class Record:
    """One image to ingest. ``array`` is set (and ``filepath`` is where it will be written) for
    images that exist only in memory, such as those of an ``.npz`` file."""

    filepath: str
    label: str | None = None
    split: str | None = None
    group: str | None = None
    array: np.ndarray | None = None
    fine: str | None = None


def _image_files(folder: Path) -> list[str]:
    """Resolved paths of the image files anywhere under ``folder`` (symlinked folders are not
    followed), in path order; one ``scandir`` per folder, ``resolve`` only for symlinked files."""
    found: list[tuple[Path, bool]] = []
    pending = [folder.resolve()]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file() and is_image_file(entry.name):
                    found.append((Path(entry.path), entry.is_symlink()))
    found.sort()
    return [str(path.resolve()) if link else str(path) for path, link in found]


def _require_dir(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CurateError(f"path not found: {path}")
    if not path.is_dir():
        raise CurateError(f"not a folder: {path}")
    return path


def read_directory(root: str | Path) -> list[Record]:
    """A class-per-folder tree ``root/<label>/*.png``, optionally under split folders
    ``root/<split>/<label>/*.png`` (when every top-level folder is a split name)."""
    root = _require_dir(root)
    top = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not top:
        raise CurateError(f"no class folders in {root}")
    with_splits = all(p.name in SPLITS for p in top)
    records: list[Record] = []
    for split_dir in top if with_splits else [root]:
        split = split_dir.name if with_splits else None
        class_dirs = sorted(
            p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        for class_dir in class_dirs:
            files = _image_files(class_dir)
            if not files and split != "pool":
                raise CurateError(f"class {class_dir.name!r} has no images in {class_dir}")
            label = None if split == "pool" else class_dir.name
            records += [Record(f, label, split) for f in files]
    if not records:
        raise CurateError(f"no images found under {root}")
    return records


def read_csv(
    path: str | Path,
    *,
    path_column: str = "filepath",
    label_column: str = "label",
    split_column: str | None = "split",
    group_column: str | None = "group",
    fine_column: str | None = None,
) -> list[Record]:
    """A CSV manifest; relative paths are resolved against the CSV's folder.

    ``split_column`` and ``group_column`` are used when present in the header; ``path_column`` and
    ``label_column`` must be present, and so must ``fine_column`` when given (finer labels, e.g.
    all chromosome classes when the label is "21" or "other", stored as ``fine_label``).
    """
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"CSV not found: {path}")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        required = [(path_column, "--path-column"), (label_column, "--label-column")]
        if fine_column is not None:
            required.append((fine_column, "--fine-column"))
        for name, option in required:
            if name not in columns:
                raise CurateError(
                    f"column {name!r} ({option}) not in {path.name}; columns: {', '.join(columns)}"
                )
        rows = list(reader)
    if not rows:
        raise CurateError(f"no rows in {path}")
    split_column = split_column if split_column in columns else None
    group_column = group_column if group_column in columns else None
    records = []
    for line, row in enumerate(rows, start=2):
        file_value = (row.get(path_column) or "").strip()
        label = (row.get(label_column) or "").strip()
        if not file_value:
            raise CurateError(f"{path.name} line {line}: empty {path_column!r}")
        if not label:
            raise CurateError(f"{path.name} line {line}: empty {label_column!r}")
        filepath = Path(file_value)
        if not filepath.is_absolute():
            filepath = path.parent / filepath
        split = (row.get(split_column) or "").strip() or None if split_column else None
        group = (row.get(group_column) or "").strip() or None if group_column else None
        fine = (row.get(fine_column) or "").strip() or None if fine_column else None
        if fine_column and fine is None:
            raise CurateError(f"{path.name} line {line}: empty {fine_column!r}")
        records.append(Record(str(filepath.resolve()), label, split, group, fine=fine))
    return records


def read_npz(
    path: str | Path, media: Path, *, class_names: list[str] | None = None
) -> list[Record]:
    """A MedMNIST-style ``.npz`` (``train_images``, ``train_labels``, ``val_*``, ``test_*``).

    Images stay in memory; ``filepath`` says where :func:`curation.ingest.ingest_records` will
    write each one (``media/<split>/<index>.png``) once everything is validated.
    """
    path = Path(path)
    if not path.is_file():
        raise CurateError(f"npz file not found: {path}")
    try:
        archive = np.load(path, allow_pickle=False)
    except Exception as error:
        raise CurateError(f"cannot read {path}: {error}") from None
    records = []
    with archive:
        found = [s for s in ("train", "val", "test") if f"{s}_images" in archive.files]
        if not found:
            raise CurateError(f"{path.name} has no '<split>_images' arrays: {archive.files}")
        for split in found:
            if f"{split}_labels" not in archive.files:
                raise CurateError(f"{path.name} has {split}_images but no {split}_labels")
            images, labels = archive[f"{split}_images"], archive[f"{split}_labels"]
            labels = labels.reshape(len(labels), -1)
            if labels.shape[1] != 1 or len(labels) != len(images):
                raise CurateError(f"{path.name}: {split}_labels must be one label per image")
            for index, (image, code) in enumerate(zip(images, labels[:, 0], strict=True)):
                label = _class_name(int(code), class_names)
                target = media / split / f"{index:06d}.png"
                records.append(Record(str(target), label, split, None, np.asarray(image)))
    return records


def _class_name(code: int, class_names: list[str] | None) -> str:
    if class_names is None:
        return str(code)
    if not 0 <= code < len(class_names):
        raise CurateError(f"label {code} has no name in --class-names ({len(class_names)} given)")
    return class_names[code]


def read_pool(folder: str | Path) -> list[Record]:
    """Unlabelled images anywhere under ``folder``, all for the ``pool`` split."""
    folder = _require_dir(folder)
    files = _image_files(folder)
    if not files:
        raise CurateError(f"no images found under {folder}")
    return [Record(f, None, "pool") for f in files]
