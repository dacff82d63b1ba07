"""Train runs' records: their config (built and checked once, at the edge) and results, with
the names of what a run writes; the kind and the training are :mod:`curation.runs.train`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brain.settings import TrainSettings
from curation.errors import CurateError
from curation.media import run_area_folder
from curation.names import run_key
from curation.runs.base import RESOLVED, Record
from curation.runs.train.data import TEST_VIEW, TRAIN_VIEW, VAL_VIEW
from curation.schema import LABEL_FIELD

_SETTINGS = tuple(TrainSettings.__dataclass_fields__)


def field_names(run: str) -> tuple[str, str]:
    """``(predictions field, evaluation key)`` of train run ``run``."""
    suffix = run_key("train", run).removeprefix("train_")
    return f"pred_{suffix}", f"eval_{suffix}"


def run_folder(dataset_name: str, run: str) -> Path:
    """Where run ``run``'s checkpoints live (not created here), strictly inside ``<media>/runs``.

    Raises:
        CurateError: a name whose folder would not lie inside it (e.g. an empty one).
    """
    return run_area_folder(dataset_name, "runs", run_key("train", run).removeprefix("train_"))


@dataclass(frozen=True)
class TrainConfig(Record):
    """What a train run was asked and what it resolved (stored as ``config``).

    The :class:`~brain.settings.TrainSettings` fields (size, pad and device as resolved from
    the dataset's policy and the machine), then the run's inputs; the fields marked
    :data:`~curation.runs.base.RESOLVED` (the data's classes, shape, statistics and digests,
    the device) are derived, so a rerun under the same name is compared without them.
    """

    arch: str = "resnet18"
    epochs: int = 50
    batch_size: int = 32
    lr: float = 1e-3
    augment: bool = False
    class_weighted: bool = False
    pretrained: bool = False
    patience: int | None = None
    select: str = "f1"
    schedule: str = "constant"
    size: int | None = None
    pad: str | None = None
    subset: int | None = None
    device: str = field(default="cpu", metadata=RESOLVED)
    devices: int = field(default=1, metadata=RESOLVED)
    specificity: float = 0.9
    seeds: list[int] = field(default_factory=list)
    with_view: str | None = None
    oversample: int = 0
    train_view: str = TRAIN_VIEW
    val_view: str = VAL_VIEW
    test_view: str = TEST_VIEW
    classes: list[str] = field(default_factory=list, metadata=RESOLVED)
    rare_class: str | None = field(default=None, metadata=RESOLVED)
    label_field: str = LABEL_FIELD
    output_classes: list[str] = field(default_factory=list, metadata=RESOLVED)
    input_shape: list[int] = field(default_factory=list, metadata=RESOLVED)
    resize: str = field(default="none", metadata=RESOLVED)
    mean: list[float] = field(default_factory=list, metadata=RESOLVED)
    std: list[float] = field(default_factory=list, metadata=RESOLVED)
    split_digest: str = field(default="", metadata=RESOLVED)
    data_digest: str = field(default="", metadata=RESOLVED)
    cv: int | None = None

    @property
    def settings(self) -> TrainSettings:
        """The training settings of the run."""
        return TrainSettings(**{name: getattr(self, name) for name in _SETTINGS})

    @classmethod
    def build(
        cls,
        settings: TrainSettings | None = None,
        *,
        seeds: int = 1,
        seed: int = 0,
        with_view: str | None = None,
        label_field: str | None = None,
        cv: int | None = None,
        oversample: int = 0,
        **changes: Any,
    ) -> TrainConfig:
        """The config of a train run, checked: the one way Python keywords, the CLI, the App
        and a study build it (arguments as :func:`curation.runs.train.train_classifier`'s).

        Raises:
            InputError: a setting out of range, fewer than one seed, ``cv`` with fewer than 2
                folds or with ``with_view`` or ``subset``.
        """
        settings = (settings or TrainSettings()).replace(**changes).check()
        if seeds < 1:
            raise CurateError(f"`seeds` must be at least 1, got {seeds}", params=("seeds",))
        if cv is not None and (with_view is not None or settings.subset is not None):
            raise CurateError(
                "`cv` trains on folds of the real data: it takes no `with_view` or `subset`",
                params=("cv", "with_view", "subset"),
            )
        if cv is not None and cv < 2:
            raise CurateError(f"`cv` needs at least 2 folds, got {cv}", params=("cv",))
        return cls(
            **settings.as_dict(),
            seeds=[seed + i for i in range(seeds)],
            with_view=with_view,
            oversample=int(oversample),
            label_field=label_field or LABEL_FIELD,
            cv=cv,
        )


@dataclass
class TrainResults(Record):
    """What a train run gave (stored as ``results``; :func:`train_classifier` returns it).

    Attributes:
        summary: ``metric -> {mean, std, n}`` over seeds for precision, recall, f1, auc and
            accuracy of the rare class on the test split (pooled over folds with ``cv``).
        per_seed: per seed, those metrics with the confusion matrix and, without folds, the
            kept epoch and its val F1 and AUC.
        checkpoints: the checkpoint folders.
        predictions_field: the field with the first seed's test predictions.
        predictions_seed: that seed.
        eval_key: the FiftyOne evaluation of those predictions.
        n_train: training samples used; ``n_train_available``: before ``subset``;
            ``n_train_synthetic``: synthetic among them; ``n_train_oversampled``: copies added.
        n_val, n_test: val and test samples.
        cv: folds (``None``: the fixed split); ``folds``: per-fold counts and mean metrics;
            ``fold_summary``: the spread of those over folds.
        warnings: metrics resting on fewer than 5 rare samples.
        run: the run's name; run_key: its key (not stored: the key is the record's).
    """

    summary: dict[str, Any] = field(default_factory=dict)
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    predictions_field: str | None = None
    predictions_seed: int | None = None
    eval_key: str | None = None
    n_train: int = 0
    n_train_available: int = 0
    n_train_synthetic: int = 0
    n_train_oversampled: int = 0
    n_val: int = 0
    n_test: int = 0
    cv: int | None = None
    folds: list[dict[str, Any]] = field(default_factory=list)
    fold_summary: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    run: str = ""
    run_key: str = ""

    def to_record(self) -> dict[str, Any]:
        record = super().to_record()
        del record["run"], record["run_key"]
        return record
