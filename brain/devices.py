"""Where and on how many threads torch runs: the one device resolver and thread setting.

Torch is imported when these are called, not when the module is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from brain.errors import InputError


def resolve_device(device: str) -> str:
    """``"auto"`` becomes ``"cuda"`` when a GPU is visible, else ``"cpu"``; ``"cpu"``,
    ``"cuda"`` and ``"cuda:I"`` are returned as they are.

    Raises:
        InputError: a CUDA device is asked for but torch sees none, or the name is unknown.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(
            f"unknown `device` {device!r}; use auto, cpu or cuda", params=("device",)
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            f"`device` {device!r} was asked for but torch sees no CUDA device",
            params=("device",),
        )
    return device


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Use ``num_threads`` intra-op threads while the block runs (``None``: leave as is).

    Raises:
        InputError: ``num_threads`` below 1.
    """
    import torch

    if num_threads is not None and num_threads < 1:
        raise InputError(
            f"`num_threads` must be at least 1, got {num_threads}", params=("num_threads",)
        )
    previous = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
