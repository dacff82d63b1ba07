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
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curation.errors import CurateError

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
IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""The one key pattern: a letter, then letters, digits or ``_``. Filter keys, top-level field
names, brain keys and stored run keys (``<kind>_<name>``) all have it."""

FILTER_KEY = NameRule(
    "filter key",
    IDENTIFIER,
    "a letter, then letters, digits or '_'",
    MAX_KEY_LENGTH,
)

FIELD_NAME = NameRule(
    "field name",
    IDENTIFIER,
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


# -- the names synthcurate derives: built-in views, run kinds and run keys ---------------------

NO_LINEAGE = "(no lineage)"
"""The generator of a synthetic sample whose lineage names no run."""

ALL_VIEW, REAL_VIEW, SYNTHETIC_VIEW, POOL_VIEW = "all", "real", "synthetic", "pool"
RARE_TRAIN, COMMON_TRAIN = "rare-train", "common-train"
"""The real train samples of the rare class, and of the other classes."""


def real_view(split: str) -> str:
    """The name of the built-in view of the real samples of one labelled ``split``
    (``real-train``, ``real-val``, ``real-test``)."""
    return f"real-{split}"


REAL_TRAIN, REAL_VAL, REAL_TEST = (real_view(split) for split in ("train", "val", "test"))

KIND_MODULES = {
    "train": "curation.runs.train",
    "embed": "curation.runs.embed",
    "filter": "curation.runs.filter",
    "generate": "curation.runs.generate",
    "experiment": "curation.experiment.record",
    "ssim": "curation.runs.ssim",
}
"""Every kind of run, with the module that registers it (the one list of kinds)."""

RUN_KINDS = tuple(KIND_MODULES)


def key_suffix(name: str) -> str:
    """``name`` as it appears in keys, fields and folder names (``-`` and ``.`` become ``_``)."""
    return name.replace("-", "_").replace(".", "_")


def run_key(kind: str, name: str) -> str:
    """The dataset key of run ``name`` of ``kind``.

    This reads the keys of stored runs, those of older versions included; a new run's name is
    checked by :func:`check_run_name` (empty, dotted, over-long names refused).

    Raises:
        ValueError: an unknown kind.
        CurateError: a name that gives no valid key.
    """
    if kind not in KIND_MODULES:
        raise ValueError(f"unknown run kind {kind!r}")
    key = f"{kind}_{key_suffix(name)}"
    if not IDENTIFIER.fullmatch(key):  # also the shape of every name derived from it
        raise CurateError(f"invalid run name {name!r}: use letters, digits, '_' or '-'")
    return key


# Names a filter run ``K`` writes: fields, brain key and views.


def check_key(key: str) -> str:
    """A filter key: a letter, then letters, digits or ``_``, at most 60 characters (it names
    fields and tags; see :mod:`curation.names`).

    Raises:
        CurateError: an invalid key.
    """
    return check_name(key, FILTER_KEY, "key")


def score_field(key: str) -> str:
    """The float field holding the scores of filter run ``key``."""
    return f"{key}_score"


def reason_field(key: str) -> str:
    """The string field holding why each synthetic sample passed or not under run ``key``."""
    return f"{key}_reason"


def part_field(key: str, part: str) -> str:
    """The float field holding part ``part`` (e.g. ``realism``) of run ``key``'s score."""
    return f"{key}_{part}"


def visualization_key(key: str) -> str:
    """The brain key of filter run ``key``'s plane points."""
    return f"{key}_umap"


def view_names(key: str) -> list[str]:
    """The saved views of filter run ``key``'s passing and rejected samples."""
    return [f"{key}-pass", f"{key}-reject"]


def pass_tag(key: str) -> str:
    """The tag on synthetic samples that passed filter run ``key``."""
    return f"{key}:pass"


def reject_tag(key: str) -> str:
    """The tag on synthetic samples that filter run ``key`` rejected."""
    return f"{key}:reject"
