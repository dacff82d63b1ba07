"""What a train run reads from a dataset: its classes, and the real train (plus a view), val
and test images as :class:`~brain.data.ImageSet` s."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import fiftyone as fo
import numpy as np

from brain.classifier import sample_pairs
from brain.data import ImageSet, check_shapes, digest
from brain.decoding import DecodedView
from curation.datasets import decode_view, resolve_view
from curation.errors import CurateError
from curation.names import REAL_TEST, REAL_TRAIN, REAL_VAL
from curation.schema import (
    GROUP_FIELD,
    LABEL_FIELD,
    LABELLED_SPLITS,
    ORIGIN_FIELD,
    REAL,
    project_info,
    rare_class,
)

TRAIN_VIEW, VAL_VIEW, TEST_VIEW = REAL_TRAIN, REAL_VAL, REAL_TEST


@dataclass
class Classes:
    """The task's classes, and the classes the network learns (the task's, or finer ones).

    Attributes:
        task: the dataset's classes.
        rare: the rare class.
        outputs: the network's classes (``task``, or those of a fine-label field).
        rare_index: the output indices that make up the rare class.
        label_field: the field the network's labels come from.
    """

    task: list[str]
    rare: str
    outputs: list[str]
    rare_index: list[int]
    label_field: str


def read_classes(dataset: fo.Dataset, label_field: str | None) -> Classes:
    """The classes a train run on ``dataset`` learns, from ``label_field`` (default: the task).

    Raises:
        CurateError: a single class, no rare class, or a fine-label field that does not fit
            (see :func:`_fine_classes`).
    """
    task = list(project_info(dataset).get("classes", []))
    rare = rare_class(dataset)
    if len(task) < 2:
        raise CurateError(f"dataset {dataset.name!r} has a single class ({task}); need two")
    if rare not in task:
        raise CurateError(f"dataset {dataset.name!r} has no rare class among {task}")
    label_field = label_field or LABEL_FIELD
    if label_field == LABEL_FIELD:
        return Classes(task, rare, task, [task.index(rare)], label_field)
    outputs, rare_index = _fine_classes(dataset, label_field, task, rare)
    return Classes(task, rare, outputs, rare_index, label_field)


def _fine_classes(
    dataset: fo.Dataset, label_field: str, task_classes: Sequence[str], rare: str
) -> tuple[list[str], list[int]]:
    """The classes of a fine-label field and the indices of those inside the rare class.

    Every fine class must lie inside one task class (e.g. chromosome 21 inside "21", the other
    chromosomes inside "other"), and the task must be binary.

    Raises:
        CurateError: missing field, a single fine class, fine classes spanning task classes,
            labelled real samples without a fine label, or a task of more than two classes.
    """
    if not dataset.has_sample_field(label_field):
        raise CurateError(f"label field {label_field!r} does not exist on dataset {dataset.name!r}")
    if len(task_classes) != 2:
        raise CurateError(
            f"training on fine labels needs a binary task, got classes {list(task_classes)}"
        )
    real = dataset.match(fo.ViewField(ORIGIN_FIELD) == REAL).exists(f"{LABEL_FIELD}.label")
    fine, task = real.values([f"{label_field}.label", f"{LABEL_FIELD}.label"])
    missing = sum(label is None for label in fine)
    if missing:
        raise CurateError(f"{missing} labelled real samples have no {label_field!r} label")
    owner: dict[str, set[str]] = {}
    for fine_label, task_label in zip(fine, task, strict=True):
        owner.setdefault(fine_label, set()).add(task_label)
    if len(owner) < 2:
        raise CurateError(f"label field {label_field!r} holds a single class; need at least two")
    mixed = sorted(label for label, parents in owner.items() if len(parents) > 1)
    if mixed:
        raise CurateError(
            f"fine classes {', '.join(mixed[:5])} of {label_field!r} belong to several task "
            "classes; each fine class must lie inside one"
        )
    classes = sorted(owner, key=_natural_key)
    return classes, [i for i, label in enumerate(classes) if rare in owner[label]]


def _natural_key(label: str) -> tuple:
    """Sort "2" before "10": numbers by value, then text."""
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def _check_extra(name: str, decoded: DecodedView, classes: Sequence[str]) -> None:
    """A ``with_view`` may add training samples only: labelled, never val or test."""
    held_out = sum(split in LABELLED_SPLITS[1:] for split in decoded.splits)
    if held_out:
        raise CurateError(
            f"view {name!r} holds {held_out} val/test samples; training never uses those splits"
        )
    unknown = Counter(label for label in decoded.labels if label not in classes)
    if unknown:
        listed = ", ".join(f"{label}: {n}" for label, n in unknown.items())
        raise CurateError(f"view {name!r} has samples without a known class label ({listed})")


@dataclass
class TrainingSets:
    """The decoded sets of a train run.

    Attributes:
        train: real train samples (plus those of the added view, not repeated).
        val: real val samples.
        test: real test samples.
        shape: the ``(H, W, C)`` every image has under the size policy.
        split_digest: digest of the real train, val and test samples and labels.
    """

    train: ImageSet
    val: ImageSet
    test: ImageSet
    shape: tuple[int, int, int]
    split_digest: str


def read_sets(
    dataset: fo.Dataset,
    classes: Classes,
    *,
    with_view: str | None,
    size: int | None,
    pad: str,
    progress: bool,
) -> TrainingSets:
    """Real train (plus ``with_view``), val and test sets with labels from the classes' field.

    Raises:
        CurateError: an unknown view, a view holding val/test or unlabelled samples, mixed
            channel counts, or mixed sizes without ``size``.
    """
    parts = {
        part: decode_view(
            resolve_view(dataset, view),
            progress=progress,
            desc=view,
            label_field=classes.label_field,
        )
        for part, view in (("train", TRAIN_VIEW), ("val", VAL_VIEW), ("test", TEST_VIEW))
    }
    if with_view is not None:
        extra = decode_view(resolve_view(dataset, with_view), progress=progress, desc=with_view)
        _check_extra(with_view, extra, classes.outputs)
        parts["extra"] = extra
    shape = check_shapes([s for part in parts.values() for s in part.shapes], size)
    sets = {name: part.to_set(classes.outputs, size, pad) for name, part in parts.items()}
    train = sets["train"]
    split_digest = digest(*(sample_pairs(sets[part]) for part in ("train", "val", "test")))
    if "extra" in sets:
        seen = set(train.ids)
        keep = [i for i, sample_id in enumerate(sets["extra"].ids) if sample_id not in seen]
        train = ImageSet.concat([train, sets["extra"].subset(keep)])
    return TrainingSets(train, sets["val"], sets["test"], shape, split_digest)


def sample_groups(dataset: fo.Dataset, ids: Sequence[str]) -> list:
    """The ``group`` of each sample of ``ids``, in that order (for grouped folds)."""
    return dataset.select(list(ids), ordered=True).values(GROUP_FIELD)


def rare_mask(labels: np.ndarray, rare_index: Sequence[int]) -> np.ndarray:
    """Whether each class index is one of the rare class's."""
    return np.isin(labels, list(rare_index))
