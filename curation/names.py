"""The one validator for what a user names: datasets, runs, filter keys and output folders.

Every name is checked before anything is read or written, so a refused name changes nothing.
A name is refused, with one line naming the option, when it is empty, ``.`` or ``..``, holds a
path separator (``/`` or ``\\``), is longer than its maximum, or uses other characters:

============  ==============================================================  =======
what          characters                                                      maximum
============  ==============================================================  =======
dataset name  letters, digits, ``_``, ``.``, ``-``; a letter or digit first   100
run name      letters, digits, ``_``, ``-``; not ``-`` first                  100
filter key    a letter, then letters, digits or ``_``                         60
study names   a letter, then letters, digits, ``_`` or ``-``                  41
field name    a letter, then letters, digits or ``_`` (no ``.``)              120
============  ==============================================================  =======

Run names become keys (``train_<name>``), fields (``pred_<name>``) and folder names, with ``-``
read as ``_``; filter keys name fields and tags (``K_score``, ``K:pass``); a study's name and
its generators' names (``name`` in its config) are joined into its run names
(``<study>-<generator>-pass-aug-s<seed>``). The maxima keep every derived name, field, tag and
file name (with its hidden temporary sibling) valid.

An output folder (``--out`` of ``curate export`` and ``curate experiment``) is refused when it is
empty, the current directory or a folder above it, the dataset's media folder or a folder
above it, inside the folders where its runs write (``runs/``, ``generate/``, ``filters/``), or a
folder holding any of the dataset's images (a source folder, or a folder above one): writing
or replacing it would mix with or destroy what the dataset reads.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curation.errors import CurateError

if TYPE_CHECKING:
    import fiftyone as fo

MAX_NAME_LENGTH = 100
MAX_KEY_LENGTH = 60


@dataclass(frozen=True)
class NameRule:
    """What one kind of name may be.

    Attributes:
        what: the kind of name in words (``run name``).
        pattern: the characters allowed (matched in full).
        allowed: ``pattern`` in words, for the error.
        max_length: the most characters.
    """

    what: str
    pattern: re.Pattern
    allowed: str
    max_length: int


DATASET_NAME = NameRule(
    "dataset name",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
    "letters, digits, '_', '.' or '-'",
    MAX_NAME_LENGTH,
)
RUN_NAME = NameRule(
    "run name",
    re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*"),
    "letters, digits, '_' or '-' (not first)",
    MAX_NAME_LENGTH,
)
FILTER_KEY = NameRule(
    "filter key",
    re.compile(r"[A-Za-z][A-Za-z0-9_]*"),
    "a letter, then letters, digits or '_'",
    MAX_KEY_LENGTH,
)

FIELD_NAME = NameRule(
    "field name",
    re.compile(r"[A-Za-z][A-Za-z0-9_]*"),
    "a letter, then letters, digits or '_' (a top-level field: no '.')",
    MAX_NAME_LENGTH + 20,
)
"""A sample field or brain key a user names (``curate embed --field``): top level, as FiftyOne
reads ``a.b`` as a path into ``a``; long enough for ``emb_`` + a run name."""

_STUDY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_STUDY_ALLOWED = "a letter, then letters, digits, '_' or '-'"
EXPERIMENT_NAME = NameRule("experiment name", _STUDY, _STUDY_ALLOWED, 41)
GENERATOR_NAME = NameRule("generator name", _STUDY, _STUDY_ALLOWED, 41)
"""A study's name and its generators' names: short, as the study's run names join them."""


def _problem(value: object, rule: NameRule) -> str | None:
    """Why ``value`` is not a valid name under ``rule`` (``None``: it is)."""
    if not isinstance(value, str):
        return "it is not text"
    if value == "":
        return "it is empty"
    if value in (".", ".."):
        return f"{value!r} names a folder"
    if "/" in value or "\\" in value:
        return "it is a path"
    if len(value) > rule.max_length:
        return f"it has {len(value)} characters"
    if not rule.pattern.fullmatch(value):
        return ""
    return None


def _shown(value: object) -> str:
    """``value`` for an error line (a long one cut short)."""
    text = repr(value)
    return text if len(text) <= 42 else f"{text[:30]}...'"


def check_name(value: str, rule: NameRule, param: str | None = None) -> str:
    """``value`` if it is a valid name under ``rule``.

    Args:
        value: the name given.
        rule: what it names (:data:`DATASET_NAME`, :data:`RUN_NAME`, :data:`FILTER_KEY`).
        param: the parameter it came in (named in the error, as the CLI spells it).

    Raises:
        CurateError: one line saying what is wrong and what is allowed.
    """
    problem = _problem(value, rule)
    if problem is None:
        return value
    where = f" for `{param}`" if param else ""
    reason = f"{problem}; " if problem else ""
    raise CurateError(
        f"invalid {rule.what} {_shown(value)}{where}: {reason}use {rule.allowed}, "
        f"at most {rule.max_length} characters",
        params=(param,) if param else (),
    )


def check_run_name(value: str, param: str = "run") -> str:
    """``value`` if it is a valid run name (see the module docstring).

    Raises:
        CurateError: an empty, dotted, path-like, over-long or otherwise invalid name.
    """
    return check_name(value, RUN_NAME, param)


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
    from curation.datasets import RUN_AREAS, media_root

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
