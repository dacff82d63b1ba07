"""ResNet classifiers (torchvision) with a stem suited to small crops, and their features.

For inputs smaller than :data:`SMALL_INPUT` pixels the ImageNet stem (7x7 stride-2 conv and a
max-pool, a 4x downsampling) would leave a 28-pixel crop with a 7x7 map before the first block,
so it is replaced by a 3x3 stride-1 conv and no max-pool, as MedMNIST does for 28-pixel images.
The channel count of the first conv follows the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from brain.errors import InputError
from brain.registry import Registry

if TYPE_CHECKING:  # torch is imported where used, so the CLI can list choices without it
    import torch
    from torch import nn

SMALL_INPUT = 96

ARCHITECTURES: Registry = Registry("architecture")
ARCHITECTURES.register("resnet18")(("resnet18", "ResNet18_Weights", "IMAGENET1K_V1"))
ARCHITECTURES.register("resnet50")(("resnet50", "ResNet50_Weights", "IMAGENET1K_V2"))


def feature_dim(arch: str) -> int:
    """Length of the penultimate feature vector of ``arch``."""
    return {"resnet18": 512, "resnet50": 2048}[ARCHITECTURES.get(arch)[0]]


def pretrained_path(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` (never downloaded here)."""
    import torch
    import torchvision

    _, weights_name, member = ARCHITECTURES.get(arch)
    url = getattr(torchvision.models, weights_name)[member].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _load_pretrained(model: nn.Module, arch: str) -> None:
    import torch

    path = pretrained_path(arch)
    if not path.is_file():
        raise InputError(
            f"`pretrained`: no local {arch} weights at {path}; copy them there "
            "(synthcurate never downloads) or leave out `pretrained`",
            params=("pretrained",),
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    own = model.state_dict()
    conv = state.get("conv1.weight")
    if conv is not None and conv.shape[2:] == own["conv1.weight"].shape[2:]:
        channels = own["conv1.weight"].shape[1]
        if conv.shape[1] != channels:  # grey or multi-channel data: spread the mean RGB filter
            state["conv1.weight"] = conv.mean(dim=1, keepdim=True).repeat(1, channels, 1, 1)
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(usable, strict=False)


def build_model(
    arch: str,
    num_classes: int,
    *,
    in_channels: int,
    input_size: tuple[int, int],
    pretrained: bool = False,
) -> nn.Module:
    """A torchvision ResNet for ``num_classes`` classes and ``in_channels``-channel images.

    Args:
        arch: ``resnet18`` or ``resnet50``.
        num_classes: outputs of the final layer.
        in_channels: image channels.
        input_size: ``(H, W)`` of the images; below :data:`SMALL_INPUT` the small stem is used.
        pretrained: start from local ImageNet weights (layers whose shapes differ, such as the
            small stem and the final layer, keep their random initialisation).

    Raises:
        InputError: for an unknown ``arch`` or missing pretrained weights.
    """
    import torchvision
    from torch import nn

    builder = getattr(torchvision.models, ARCHITECTURES.get(arch)[0])
    model = builder(weights=None, num_classes=num_classes)
    if min(input_size) < SMALL_INPUT:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if pretrained:
        _load_pretrained(model, arch)
    return model


def forward_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The penultimate-layer vector of a torchvision ResNet (global average pool, before ``fc``)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return model.avgpool(x).flatten(1)
