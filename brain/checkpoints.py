"""Classifier checkpoints: a ``state_dict`` in safetensors next to a JSON model card.

``<folder>/model.safetensors`` holds the weights (``model.pt`` saved with ``torch.save`` is read
too, always with ``weights_only=True``); ``<folder>/model.json`` says what the weights expect:
architecture, classes, rare class, input size and channels, resize policy, normalisation, the
digest of the data it was trained on and its metrics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from brain.errors import InputError
from brain.size_policy import SizePolicy

WEIGHTS_FILE = "model.safetensors"
TORCH_FILE = "model.pt"
CARD_FILE = "model.json"
CARD_VERSION = 1


@dataclass
class ModelCard:
    """What a checkpoint expects and how it was made.

    Attributes:
        arch: ``resnet18`` or ``resnet50``.
        classes: output classes, in logit order.
        rare_class: the positive class.
        in_channels: image channels.
        input_size: ``[H, W]`` fed to the network.
        resize: ``"none"`` (images must already be ``input_size``) or ``"pad-resize"`` (padded
            to a centred square and resized).
        mean: per-channel mean in ``[0, 1]`` units, subtracted before the network.
        std: per-channel standard deviation in ``[0, 1]`` units.
        data_digest: digest of the training, validation and test samples.
        seed: the training seed.
        best_epoch: the epoch whose weights were kept (best validation F1 of the rare class).
        metrics: test metrics of these weights.
        label_field: the field whose labels the network learnt: the task labels
            (``ground_truth``) or finer ones (e.g. ``fine_label``), whose classes are then
            ``classes`` and whose rare-class outputs are ``rare_outputs``.
        rare_outputs: output indices that make up the rare class (``None``: the index of
            ``rare_class`` in ``classes``).
        pad: how images were padded to a square before resizing (see
            :func:`brain.data.pad_to_square`).
    """

    arch: str
    classes: list[str]
    rare_class: str
    in_channels: int
    input_size: list[int]
    resize: str
    mean: list[float]
    std: list[float]
    data_digest: str
    seed: int
    best_epoch: int
    metrics: dict[str, Any] = field(default_factory=dict)
    version: int = CARD_VERSION
    label_field: str = "ground_truth"
    rare_outputs: list[int] | None = None
    pad: str = "constant:0"  # checkpoints made before the padding was recorded padded with 0

    @property
    def rare_indices(self) -> list[int]:
        """Output indices of the rare class (several for a network trained on fine labels)."""
        if self.rare_outputs is not None:
            return list(self.rare_outputs)
        return [self.classes.index(self.rare_class)]

    @property
    def size_policy(self) -> SizePolicy:
        """The size policy the network's images were shaped by (its input size when it
        resizes; images as they are otherwise)."""
        if self.resize != "pad-resize":
            return SizePolicy()
        return SizePolicy(self.input_size[0], self.pad)

    def rare_probability(self, proba):
        """The rare-class probability ``(N,)`` from the network's ``(N, K)`` probabilities."""
        return proba[:, self.rare_indices].sum(axis=1)

    def check_data(
        self, classes: Sequence[str], rare_class: str | None, shapes: Sequence[tuple[int, ...]]
    ) -> None:
        """Refuse data this checkpoint was not made for.

        Args:
            classes: the dataset's classes.
            rare_class: the dataset's rare class.
            shapes: ``(H, W, C)`` of the images to feed.

        Raises:
            InputError: if classes, rare class, channels or (without resizing) sizes differ.
        """
        fine = self.label_field != "ground_truth"  # outputs are fine classes, not the task's
        if (not fine and list(classes) != list(self.classes)) or rare_class != self.rare_class:
            raise InputError(
                f"checkpoint classes {self.classes} (rare {self.rare_class!r}) do not match the "
                f"dataset's {list(classes)} (rare {rare_class!r})"
            )
        expected = (*self.input_size, self.in_channels)
        for shape in shapes:
            if shape[2] != self.in_channels or (self.resize == "none" and shape != expected):
                raise InputError(
                    f"checkpoint expects {'x'.join(map(str, expected))} images "
                    f"(resize: {self.resize}), got {'x'.join(map(str, shape))}"
                )


def save_checkpoint(model: nn.Module, card: ModelCard, folder: Path) -> Path:
    """Write ``model``'s ``state_dict`` and ``card`` into ``folder``; returns the weights path."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = folder / WEIGHTS_FILE
    save_file(state, str(weights), metadata={"arch": card.arch})
    (folder / CARD_FILE).write_text(json.dumps(asdict(card), indent=2))
    return weights


def read_card(folder: Path) -> ModelCard:
    """The model card in ``folder``.

    Raises:
        InputError: if it is missing, not a model card, or has keys a card does not have (or
            lacks some it must have).
    """
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise InputError(f"no model card at {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"unreadable model card {path}: {error}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a model card (a JSON object)")
    keys = {f.name: f for f in fields(ModelCard)}
    unknown = sorted(set(data) - set(keys))
    missing = [k for k, f in keys.items() if k not in data and _required(f)]
    if unknown or missing:
        parts = [f"unknown key(s) {', '.join(unknown)}"] if unknown else []
        parts += [f"missing key(s) {', '.join(missing)}"] if missing else []
        raise InputError(f"model card {path} has {' and '.join(parts)}")
    return ModelCard(**data)


def _required(spec) -> bool:
    return spec.default is MISSING and spec.default_factory is MISSING


def _read_state(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / WEIGHTS_FILE).is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / WEIGHTS_FILE))
    if (folder / TORCH_FILE).is_file():
        return torch.load(folder / TORCH_FILE, map_location="cpu", weights_only=True)
    raise InputError(f"no {WEIGHTS_FILE} or {TORCH_FILE} in {folder}")


def load_checkpoint(folder: Path) -> tuple[nn.Module, ModelCard]:
    """Rebuild the network of ``folder`` in eval mode on the CPU, with its card.

    Raises:
        InputError: if files are missing or the weights do not fit the card.
    """
    from brain.models import build_model

    folder = Path(folder)
    card = read_card(folder)
    model = build_model(
        card.arch,
        len(card.classes),
        in_channels=card.in_channels,
        input_size=(card.input_size[0], card.input_size[1]),
    )
    try:
        model.load_state_dict(_read_state(folder), strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise InputError(f"checkpoint {folder} does not match its model card: {first}") from None
    return model.eval(), card
