"""Tensor helpers of the network generators: fixed-size chunks, seeded noise, layouts, weights.

Generation runs networks on chunks of a fixed number of images (:func:`in_fixed_chunks`), so
the image made for a ``(source, seed)`` pair does not depend on what is generated with it.
Torch is imported where these run, not when the module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from brain.errors import InputError

if TYPE_CHECKING:
    import torch

#: Networks generate on chunks of exactly this many images (see :func:`in_fixed_chunks`).
GENERATION_CHUNK = 8


def in_fixed_chunks(
    network: Callable[..., torch.Tensor], *inputs: torch.Tensor, chunk: int = GENERATION_CHUNK
) -> torch.Tensor:
    """``network(*inputs)`` evaluated on chunks of exactly ``chunk`` rows (the last one padded
    with zeros), concatenated.

    Matrix products give slightly different floats for different batch shapes (BLAS picks its
    kernels by size), enough to change a rounded pixel: with one fixed shape, each output row
    depends on its own input rows only, whatever else is generated with it.
    """
    import torch

    count = len(inputs[0])
    pad = -count % chunk
    if pad:
        inputs = tuple(torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]) for x in inputs)
    outputs = [
        network(*(x[start : start + chunk] for x in inputs))
        for start in range(0, count + pad, chunk)
    ]
    return torch.cat(outputs)[:count]


def seeded_generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU torch generator per seed: per-sample noise, the same on any device."""
    import torch

    return [torch.Generator().manual_seed(seed) for seed in seeds]


def nhwc_to_tensor(images: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
    """Float ``(N, H, W, C)`` array to a float32 ``(N, C, H, W)`` tensor (on ``device``)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32))
    return tensor if device is None else tensor.to(device)


def tensor_to_nhwc(tensor: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` tensor to a float32 ``(N, H, W, C)`` array."""
    return tensor.detach().cpu().float().numpy().transpose(0, 2, 3, 1)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; ``decay = 0`` copies exactly."""
    import torch

    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), model.parameters(), strict=True):
            if decay == 0.0:
                averaged.copy_(current)
            else:
                averaged.lerp_(current, 1.0 - decay)
        for averaged, current in zip(ema.buffers(), model.buffers(), strict=True):
            averaged.copy_(current)


def module_weights(module: torch.nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    """A module's state dict as numpy arrays (names prefixed)."""
    return {
        f"{prefix}{name}": value.detach().cpu().numpy().copy()
        for name, value in module.state_dict().items()
    }


def load_module_weights(module: torch.nn.Module, weights: dict[str, np.ndarray], prefix: str = ""):
    """Load numpy weights (names prefixed) into a module; a mismatch raises InputError."""
    import torch

    state = {
        name[len(prefix) :]: torch.from_numpy(np.array(value))
        for name, value in weights.items()
        if name.startswith(prefix)
    }
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise InputError(f"the saved weights do not fit this network: {first}") from None
