"""Training augmentation on ``uint8`` batches: flips, right-angle rotations and a random crop.

Each sample draws its own transforms from one seeded :class:`torch.Generator` (a torchvision v2
transform applied to a batch would give every sample the same draw), so runs are reproducible.
The random crop pads by an eighth of the side, repeating the edge pixels (so a light
background stays light), and crops back to the original size at a random offset, like
``v2.RandomCrop(size, padding=size // 8, padding_mode="edge")``.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as TF


def _where(mask: torch.Tensor, changed: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    if not bool(mask.any()):
        return batch
    out = batch.clone()
    out[mask] = changed
    return out


def random_flips(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each sample horizontally and, independently, vertically with probability 1/2."""
    size = batch.shape[0]
    horizontal = torch.rand(size, generator=generator) < 0.5
    vertical = torch.rand(size, generator=generator) < 0.5
    batch = _where(horizontal, TF.horizontal_flip(batch[horizontal]), batch)
    return _where(vertical, TF.vertical_flip(batch[vertical]), batch)


def random_right_angles(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate each square sample by 0, 90, 180 or 270 degrees (non-square: 0 or 180)."""
    size, _, height, width = batch.shape
    turns = torch.randint(0, 4, (size,), generator=generator)
    if height != width:
        turns = turns - turns % 2  # a quarter turn would change the shape
    out = batch
    for k in (1, 2, 3):
        mask = turns == k
        if bool(mask.any()):
            out = _where(mask, torch.rot90(batch[mask], k, dims=(2, 3)), out)
    return out


def random_crop(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Pad by ``max(1, side // 8)`` repeating the edge pixels, and crop each sample back at a
    random offset."""
    size, _, height, width = batch.shape
    pad = max(1, min(height, width) // 8)
    padded = TF.pad(batch, [pad, pad, pad, pad], padding_mode="edge")
    tops = torch.randint(0, 2 * pad + 1, (size,), generator=generator).tolist()
    lefts = torch.randint(0, 2 * pad + 1, (size,), generator=generator).tolist()
    return torch.stack(
        [
            padded[i, :, top : top + height, left : left + width]
            for i, (top, left) in enumerate(zip(tops, lefts, strict=True))
        ]
    )


def augment_batch(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flips, right-angle rotations and a random crop, drawn per sample of a ``(B, C, H, W)``
    batch from ``generator``."""
    batch = random_flips(batch, generator)
    batch = random_right_angles(batch, generator)
    return random_crop(batch, generator)
