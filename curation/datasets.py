"""Access to project datasets: open, list, delete, media folders, named views and their images."""

from __future__ import annotations

from typing import TYPE_CHECKING

import fiftyone as fo
from fiftyone import ViewField as F

from brain.decoding import decode_paths
from curation.errors import CurateError
from curation.leftovers import is_temp_dataset_name
from curation.names import (
    ALL_VIEW,
    COMMON_TRAIN,
    DATASET_NAME,
    POOL_VIEW,
    RARE_TRAIN,
    REAL_TRAIN,
    REAL_VIEW,
    SYNTHETIC_VIEW,
    real_view,
)
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
)

if TYPE_CHECKING:
    from brain.decoding import DecodedView


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


def builtin_views(dataset: fo.Dataset) -> dict[str, fo.DatasetView]:
    """Views every project has by name: ``all``, ``real``, ``synthetic``, ``pool``,
    ``real-<split>`` for each labelled split, and, once the rare class is known, ``rare-train``
    and ``common-train`` (real train samples of the rare class, and of the other classes)."""
    real = dataset.match(F(ORIGIN_FIELD) == REAL)
    views = {
        ALL_VIEW: dataset.view(),
        REAL_VIEW: real,
        SYNTHETIC_VIEW: dataset.match(F(ORIGIN_FIELD) == SYNTHETIC),
        POOL_VIEW: real.match(F(SPLIT_FIELD) == "pool"),
    }
    for split in SPLITS[:3]:
        views[real_view(split)] = real.match(F(SPLIT_FIELD) == split)
    rare = rare_class(dataset)
    if rare is not None:
        label = F(f"{LABEL_FIELD}.label")
        views[RARE_TRAIN] = views[REAL_TRAIN].match(label == rare)
        views[COMMON_TRAIN] = views[REAL_TRAIN].match(label.exists() & (label != rare))
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
    """Decode every image of ``view`` (through :data:`brain.decoding.IMAGE_CACHE`) with its id,
    label (from ``label_field``), split and origin; ``desc`` names it in progress and errors.

    Raises:
        InputError: if the view is empty or an image is unreadable.
    """
    ids, paths, labels, splits, origins = view.values(
        ["id", "filepath", f"{label_field}.label", SPLIT_FIELD, ORIGIN_FIELD]
    )
    return decode_paths(ids, paths, labels, splits, origins, progress=progress, desc=desc)
