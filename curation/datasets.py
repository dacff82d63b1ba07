"""Access to project datasets: open, list, delete, media folders, named views and their images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import fiftyone as fo
from fiftyone import ViewField as F

from curation.errors import CurateError
from curation.leftovers import clean_leftovers, is_temp_dataset_name
from curation.names import DATASET_NAME
from curation.names import check_name as check_named
from curation.schema import (
    INFO_KEY,
    LABEL_FIELD,
    ORIGIN_FIELD,
    REAL,
    SPLIT_FIELD,
    SPLITS,
    SYNTHETIC,
    rare_class,
    size_policy,
)

if TYPE_CHECKING:
    import numpy as np

    from brain.data import DecodedView

RUN_AREAS = ("runs", "generate", "filters")
"""The folders of a dataset's media folder that hold one folder per run (train, generate,
filter)."""


def check_name(name: str) -> str:
    """Validate a dataset name (letters, digits, ``_``, ``.``, ``-``, at most 100 characters;
    used in folder names too: see :mod:`curation.names`).

    Raises:
        CurateError: an invalid name.
    """
    return check_named(name, DATASET_NAME)


def dataset_exists(name: str) -> bool:
    """Whether a FiftyOne dataset called ``name`` exists."""
    return fo.dataset_exists(name)


def open_dataset(name: str) -> fo.Dataset:
    """Load the project dataset ``name``.

    Raises:
        CurateError: if it does not exist.
    """
    if not fo.dataset_exists(name):
        raise CurateError(f"dataset {name!r} does not exist (see `curate list`)")
    return fo.load_dataset(name)


def as_dataset(dataset: fo.Dataset | str) -> fo.Dataset:
    """``dataset`` itself, or the project dataset of that name (opened once, at the top of a
    public function, then passed down).

    Raises:
        CurateError: a name of no dataset.
    """
    return open_dataset(dataset) if isinstance(dataset, str) else dataset


def list_projects() -> list[str]:
    """Names of the persistent datasets made by synthcurate (temporary ones of running or
    interrupted commands are not listed: see :mod:`curation.leftovers`)."""
    names = []
    for name in fo.list_datasets():
        if is_temp_dataset_name(name):
            continue
        try:
            info = fo.load_dataset(name).info
        except Exception:
            continue
        if INFO_KEY in info:
            names.append(name)
    return names


def delete_dataset(name: str) -> None:
    """Delete dataset ``name``, its ``<name>-parents`` dataset of whole images (see
    :mod:`curation.segment`), the leftovers of its killed runs and the media synthcurate wrote
    for it (source images are kept). Similarity indexes outside the database (a Milvus or
    Qdrant collection, a LanceDB table, a Milvus Lite file elsewhere) are dropped first, where
    their store answers."""
    import shutil

    from curation.runs.embed import drop_indexes

    dataset = open_dataset(name)
    media = media_root(name)
    if fo.dataset_exists(f"{name}-parents"):
        fo.load_dataset(f"{name}-parents").delete()
    clean_leftovers(name)
    drop_indexes(dataset)
    dataset.delete()
    if media.is_dir():
        shutil.rmtree(media)


def media_base() -> Path:
    """The folder holding every dataset's media folder."""
    return Path(fo.config.default_dataset_dir) / "synthcurate"


def media_root(name: str) -> Path:
    """The folder where synthcurate writes images for dataset ``name`` (never beside sources)."""
    return media_base() / check_name(name)


def run_area_folder(dataset_name: str, area: str, folder: str) -> Path:
    """The folder of one run, ``<media>/<area>/<folder>`` (not created), where ``area`` is one
    of :data:`RUN_AREAS`: refused unless it lies strictly inside ``<media>/<area>``, so that no
    run writes or deletes outside its own folder.

    Raises:
        CurateError: ``folder`` is empty, ``.``, ``..`` or a path.
    """
    if area not in RUN_AREAS:
        raise ValueError(f"unknown run area {area!r}")
    parent = media_root(dataset_name) / area
    path = parent / folder
    if folder in ("", ".", "..") or path.parent != parent:
        raise CurateError(f"run folder {folder!r} would not lie inside {parent}")
    return path


def media_dir(dataset: fo.Dataset | str, *parts: str) -> Path:
    """A sub-folder of the dataset's media root (created)."""
    name = dataset if isinstance(dataset, str) else dataset.name
    path = media_root(name).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def builtin_views(dataset: fo.Dataset) -> dict[str, fo.DatasetView]:
    """Views every project has by name: ``all``, ``real``, ``synthetic``, ``pool``,
    ``real-<split>`` for each labelled split, and, once the rare class is known, ``rare-train``
    and ``common-train`` (real train samples of the rare class, and of the other classes)."""
    real = dataset.match(F(ORIGIN_FIELD) == REAL)
    views = {
        "all": dataset.view(),
        "real": real,
        "synthetic": dataset.match(F(ORIGIN_FIELD) == SYNTHETIC),
        "pool": real.match(F(SPLIT_FIELD) == "pool"),
    }
    for split in SPLITS[:3]:
        views[f"real-{split}"] = real.match(F(SPLIT_FIELD) == split)
    rare = rare_class(dataset)
    if rare is not None:
        label = F(f"{LABEL_FIELD}.label")
        views["rare-train"] = views["real-train"].match(label == rare)
        views["common-train"] = views["real-train"].match(label.exists() & (label != rare))
    return views


def resolve_view(dataset: fo.Dataset, name: str) -> fo.DatasetView:
    """A view by name: a saved view of the dataset, or one of :func:`builtin_views`.

    Raises:
        CurateError: if no view has that name.
    """
    if dataset.has_saved_view(name):
        return dataset.load_saved_view(name)
    views = builtin_views(dataset)
    if name in views:
        return views[name]
    known = sorted(set(views) | set(dataset.list_saved_views()))
    raise CurateError(f"no view {name!r} in dataset {dataset.name!r}; known: {', '.join(known)}")


def save_view(dataset: fo.Dataset, name: str, view: fo.DatasetView, description: str = "") -> None:
    """Save ``view`` under ``name``, replacing an older view of that name (also one another
    process saved since ``dataset`` was loaded: the App, or a command that was killed)."""
    dataset.reload()
    if dataset.has_saved_view(name):
        dataset.delete_saved_view(name)
    dataset.save_view(name, view, description=description or None)


def labelled(view: fo.DatasetView) -> fo.DatasetView:
    """The samples of ``view`` that carry a label."""
    return view.exists(f"{LABEL_FIELD}.label")


def decode_view(
    view: fo.DatasetView,
    progress: bool = True,
    *,
    desc: str = "view",
    label_field: str = LABEL_FIELD,
) -> DecodedView:
    """Decode every image of ``view`` (through :data:`brain.data.IMAGE_CACHE`) with its id,
    label (from ``label_field``), split and origin; ``desc`` names it in progress and errors.

    Raises:
        InputError: if the view is empty or an image is unreadable.
    """
    from brain.data import decode_paths

    ids, paths, labels, splits, origins = view.values(
        ["id", "filepath", f"{label_field}.label", SPLIT_FIELD, ORIGIN_FIELD]
    )
    return decode_paths(ids, paths, labels, splits, origins, progress=progress, desc=desc)


def view_images(dataset: fo.Dataset, view: fo.DatasetView, *, desc: str = "view") -> np.ndarray:
    """The images of ``view`` as one ``uint8`` ``(N, H, W, C)`` array under ``dataset``'s size
    policy (see :func:`curation.schema.size_policy`)."""
    from brain.data import fitted_images

    size, pad = size_policy(dataset)
    return fitted_images(decode_view(view, progress=False, desc=desc).arrays, size, pad)
