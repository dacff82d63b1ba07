"""Where synthcurate writes for a dataset: its media folder, the run areas inside it, and the
check on output folders. A leaf module: it imports nothing from the runs layer or the datasets.

An output folder (``--out`` of ``curate export`` and ``curate experiment``) is refused when it is
empty, the current directory or a folder above it, the dataset's media folder or a folder
above it, inside the folders where its runs write (``runs/``, ``generate/``, ``filters/``), or a
folder holding any of the dataset's images (a source folder, or a folder above one): writing
or replacing it would mix with or destroy what the dataset reads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import fiftyone as fo

from curation.errors import CurateError
from curation.names import DATASET_NAME, check_name

RUN_AREAS = ("runs", "generate", "filters")
"""The folders of a dataset's media folder that hold one folder per run (train, generate,
filter)."""


def media_base() -> Path:
    """The folder holding every dataset's media folder."""
    return Path(fo.config.default_dataset_dir) / "synthcurate"


def media_root(name: str) -> Path:
    """The folder where synthcurate writes images for dataset ``name`` (never beside sources)."""
    return media_base() / check_name(name, DATASET_NAME)


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


def _within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it."""
    return path == folder or folder in path.parents


def _image_under(dataset: fo.Dataset, folder: Path) -> str | None:
    """A filepath of ``dataset`` inside ``folder`` (at any depth), if any (by the index on
    ``filepath``)."""
    prefix = "^" + re.escape(str(folder).rstrip("/") + "/")
    found = dataset.match({"filepath": {"$regex": prefix}}).limit(1).values("filepath")
    return found[0] if found else None


def out_folder_problem(out: Path, dataset: fo.Dataset) -> str | None:
    """Why ``out`` may not be an output folder for ``dataset`` (``None``: it may)."""
    path = Path(os.path.abspath(out))
    resolved = path.resolve()
    cwd = Path.cwd().resolve()
    if cwd == resolved or resolved in cwd.parents:
        return "is the current directory" if cwd == resolved else "holds the current directory"
    media = media_root(dataset.name)
    for folder in {media, media.resolve()}:
        if folder == resolved or resolved in folder.parents:
            what = "is" if folder == resolved else "holds"
            return f"{what} the media folder of dataset {dataset.name!r} ({folder})"
        for area in RUN_AREAS:
            if _within(resolved, folder / area):
                return f"lies in {folder / area}, where the runs of {dataset.name!r} write"
    for candidate in dict.fromkeys([path, resolved]):
        image = _image_under(dataset, candidate)
        if image is not None:
            return f"holds images of dataset {dataset.name!r} (e.g. {image})"
    return None


def check_out_folder(out: str | Path | None, dataset: fo.Dataset, param: str = "out") -> Path:
    """``out`` as a path, if it may be written (or replaced) as an output folder of ``dataset``:
    not empty, not the current directory or above it, not the media folder or above it, not in
    the folders where runs write, and not a folder holding any of the dataset's images (at any
    depth: a source folder or one above it). A new folder inside a source folder is allowed.

    Raises:
        CurateError: one line naming the option and why.
    """
    if out is None or not str(out).strip():
        raise CurateError(f"`{param}` is empty: name the folder to write", params=(param,))
    problem = out_folder_problem(Path(out), dataset)
    if problem is not None:
        raise CurateError(
            f"`{param}` {str(out)!r} {problem}: choose another folder", params=(param,)
        )
    return Path(out)
