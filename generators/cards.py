"""Saved generators on disk: the card (``generator.json``), digests of weights and training data.

A saved generator is a folder with ``generator.json`` (method, image size, channels, condition,
parameters, digests) and ``weights.safetensors`` (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from brain.errors import InputError

CARD_FILE = "generator.json"
WEIGHTS_FILE = "weights.safetensors"
CARD_VERSION = 1


def weights_digest(weights: Mapping[str, np.ndarray]) -> str:
    """sha256 over the weights' names, dtypes, shapes and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def training_data_digest(
    targets: np.ndarray, sources: np.ndarray | None, masks: np.ndarray | None
) -> str:
    """sha256 of the arrays a generator is fitted on (shapes and bytes; ``None`` counts)."""
    digest = hashlib.sha256()
    for array in (targets, sources, masks):
        digest.update(b"none" if array is None else repr(array.shape).encode())
        if array is not None:
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def write_json(data: Any, path: Path) -> None:
    """Write JSON atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_card(path: str | os.PathLike) -> dict[str, Any]:
    """The card of a saved generator folder.

    Raises:
        InputError: if the folder holds no readable card.
    """
    card_path = Path(path) / CARD_FILE
    if not card_path.is_file():
        raise InputError(f"no saved generator in {path} (missing {CARD_FILE})")
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {card_path}: {error}") from None
    if not isinstance(card, dict) or "method" not in card or "params" not in card:
        raise InputError(f"{card_path} is not a generator card")
    if not isinstance(card["params"], dict):
        raise InputError(f"{card_path}: its params must be a JSON object")
    return card
