"""How a classifier is trained: the one settings type of train runs, the study and calibration.

:class:`TrainSettings` is frozen; its fields carry their help and, where they have them, their
choices, so the command line builds its options from it (``curation.cli.options``) and the
experiment config's ``classifier:`` section is one. Importing this module does not import torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from brain.errors import InputError
from brain.metrics import check_specificity
from brain.models import ARCHITECTURES

SELECTION = ("f1", "auc", "loss")
"""What picks the kept epoch on the val split (see ``brain.training.selection_key``)."""
SCHEDULES = ("constant", "cosine")
"""Learning rate over epochs (see ``brain.training.make_scheduler``)."""


def _option(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    minimum: int | None = None,
) -> Any:
    """A settings field with what a front end needs to offer it: help, choices, a minimum."""
    return field(default=default, metadata={"help": help, "choices": choices, "minimum": minimum})


@dataclass(frozen=True)
class TrainSettings:
    """How one network is trained (shared by every seed of a run).

    Attributes:
        arch: ``resnet18`` or ``resnet50`` (:data:`brain.models.ARCHITECTURES`).
        epochs: epochs per seed; the best epoch on the val split is kept.
        batch_size: training batch size (at least 2, for batch norm).
        lr: Adam learning rate.
        augment: random flips, right-angle rotations and crops while training.
        class_weighted: inverse-frequency class weights in the loss.
        pretrained: start from local ImageNet weights (never downloaded).
        patience: stop a seed after this many epochs without a better val score.
        select: what picks the kept epoch: ``f1`` of the rare class (ties broken by AUC, then
            loss), ``auc`` or ``loss`` (:data:`SELECTION`).
        schedule: ``constant`` learning rate or ``cosine`` decay (:data:`SCHEDULES`).
        size: pad each image to a centred square and resize it to ``size x size``; ``None``:
            the dataset's size policy, else every image must share one size.
        pad: how ``size`` pads (``border``, ``edge``, ``reflect``, ``constant:VALUE``);
            ``None``: the dataset's policy, else ``border``.
        subset: train on a stratified subset of about this many samples.
        device: ``auto`` (a GPU when one is visible), ``cpu`` or ``cuda``.
        devices: train data-parallel in this many processes, one per device (GPUs
            ``cuda:0..N-1``, or CPU cores without a GPU); ``batch_size`` is per device.
        specificity: the val specificity, in ``(0, 1)``, that sets each seed's threshold on
            the rare-class score; recall on test at that threshold is reported beside the
            metrics (``brain.metrics.recall_at_specificity``). It does not change training.
    """

    arch: str = _option("resnet18", "Network architecture.", tuple(ARCHITECTURES.names()))
    epochs: int = _option(50, "Epochs per seed (the best on val is kept).", minimum=1)
    batch_size: int = _option(32, "Training batch size.", minimum=2)
    lr: float = _option(1e-3, "Adam learning rate.")
    augment: bool = _option(False, "Flips, right-angle rotations and random crops.")
    class_weighted: bool = _option(False, "Inverse-frequency class weights.")
    pretrained: bool = _option(False, "Start from local ImageNet weights.")
    patience: int | None = _option(
        None, "Early stopping after N epochs without progress.", minimum=1
    )
    select: str = _option(
        "f1", "Validation score that picks the kept epoch (f1: of the rare class).", SELECTION
    )
    schedule: str = _option("constant", "Learning rate over epochs.", SCHEDULES)
    size: int | None = _option(None, "Pad to a centred square, resize to SIZE x SIZE.", minimum=8)
    pad: str | None = _option(None, "Padding for size: border, edge, reflect or constant:V.")
    subset: int | None = _option(
        None, "Train on a stratified subset of about N samples.", minimum=2
    )
    device: str = _option("auto", "auto, cpu or cuda.")
    devices: int = _option(1, "Data-parallel processes, one per GPU (or CPU core).", minimum=1)
    specificity: float = _option(
        0.9, "Val specificity that sets the threshold of the reported recall at it."
    )

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with ``changes`` (field names of this class).

        Raises:
            TypeError: an unknown field name.
        """
        return dataclasses.replace(self, **changes)

    def check(self) -> TrainSettings:
        """``self`` if every value is in range; returns it for chaining.

        Raises:
            InputError: naming the first setting out of range.
        """
        _at_least(self.epochs, 1, "epochs")
        _at_least(self.batch_size, 2, "batch_size")
        _at_least(self.devices, 1, "devices")
        if not self.lr > 0:
            raise InputError(f"`lr` must be positive, got {self.lr}", params=("lr",))
        check_specificity(self.specificity)
        if self.subset is not None:
            _at_least(self.subset, 2, "subset")
        if self.patience is not None:
            _at_least(self.patience, 1, "patience")
        from brain.size_policy import check_pad, check_size

        check_size(self.size)
        if self.pad is not None:
            check_pad(self.pad)
        if self.pretrained:
            from brain.models import pretrained_path

            path = pretrained_path(self.arch)
            if not path.is_file():
                raise InputError(
                    f"`pretrained`: no local {self.arch} weights at {path}", params=("pretrained",)
                )
        for name in ("select", "schedule", "arch"):
            choices = self.choices(name)
            value = getattr(self, name)
            if value not in choices:
                raise InputError(
                    f"unknown `{name}` {value!r}; choose from {', '.join(choices)}", params=(name,)
                )
        return self

    @classmethod
    def choices(cls, name: str) -> tuple[str, ...]:
        """The allowed values of setting ``name`` (empty when it takes any value)."""
        return tuple(_field(name).metadata.get("choices") or ())

    @classmethod
    def help(cls, name: str) -> str:
        """One line of help on setting ``name``."""
        return str(_field(name).metadata.get("help", ""))

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data."""
        return dataclasses.asdict(self)


def _field(name: str) -> dataclasses.Field:
    for entry in dataclasses.fields(TrainSettings):
        if entry.name == name:
            return entry
    raise KeyError(name)


def _at_least(value: int, minimum: int, name: str) -> None:
    if value < minimum:
        raise InputError(f"`{name}` must be at least {minimum}, got {value}", params=(name,))
