"""The BBDM denoiser: a ``diffusers.UNet2DModel`` that sees ``x_t`` concatenated with ``y``.

``in_channels = 2 C`` (``x_t`` and ``y`` stacked along channels), ``out_channels = C`` (the "grad"
prediction), the timestep ``t`` through the UNet's sinusoidal embedding. Presets:

=============  ==========================  =======  ===========  =======================
preset         block_out_channels          layers   attention    parameters (C = 3)
=============  ==========================  =======  ===========  =======================
``tiny``       (16, 32)                    1        none         ~0.2M (tests)
``cpu``        (32, 64, 128)               1        mid block    ~2.5M (default)
``gpu``        (64, 128, 256, 256)         2        16 px, mid   ~30M
``gpu-large``  (128, 128, 256, 256, 512)   2        16 px, mid   ~100M
=============  ==========================  =======  ===========  =======================

The public BBDM UNet (237M parameters) is out of reach on CPU; these are the same architecture
family (residual blocks, group norm, sinusoidal time embedding) at smaller widths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from brain.errors import InputError

if TYPE_CHECKING:
    from diffusers import UNet2DModel

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "block_out_channels": (16, 32),
        "down_block_types": ("DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D"),
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "add_attention": False,
    },
    "cpu": {
        "block_out_channels": (32, 64, 128),
        "down_block_types": ("DownBlock2D", "DownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "UpBlock2D", "UpBlock2D"),
        "layers_per_block": 1,
        "norm_num_groups": 32,
        "add_attention": True,
    },
    "gpu": {
        "block_out_channels": (64, 128, 256, 256),
        "down_block_types": ("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "add_attention": True,
    },
    "gpu-large": {
        "block_out_channels": (128, 128, 256, 256, 512),
        "down_block_types": (
            "DownBlock2D",
            "DownBlock2D",
            "DownBlock2D",
            "AttnDownBlock2D",
            "DownBlock2D",
        ),
        "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "add_attention": True,
    },
}


def check_preset(preset: str, image_size: int) -> dict[str, Any]:
    """The preset's UNet arguments; the image side must halve cleanly at each level.

    Raises:
        InputError: on an unknown preset or an image size the preset cannot take.
    """
    if preset not in PRESETS:
        raise InputError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}")
    config = PRESETS[preset]
    factor = 2 ** (len(config["block_out_channels"]) - 1)
    if image_size % factor or image_size // factor < 2:
        raise InputError(
            f"model preset {preset!r} needs an image size divisible by {factor} (and at least "
            f"{2 * factor}), got {image_size}"
        )
    return config


def make_unet(preset: str, image_size: int, in_channels: int, out_channels: int) -> UNet2DModel:
    """A fresh ``UNet2DModel`` of the preset (weights from the current torch RNG)."""
    from diffusers import UNet2DModel

    config = check_preset(preset, image_size)
    return UNet2DModel(
        sample_size=image_size,
        in_channels=in_channels,
        out_channels=out_channels,
        **config,
    )
