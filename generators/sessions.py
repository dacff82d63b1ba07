"""A generator for a run: built from a method name and parameters, then trained, resumed or
loaded from the run's checkpoint folder (arrays and files only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from brain.errors import InputError
from generators.base import GENERATORS, Generator
from generators.cards import CARD_FILE, read_card

FIXED_PARAMS = ("image_size", "channels", "condition", "seed")
"""Constructor parameters a run sets itself (from the images, the condition and its seed)."""


def with_defaults(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as JSON values, with the method's defaults for parameters it lacks (a run or
    checkpoint recorded before a parameter existed)."""
    defaults = GENERATORS.get(method).default_params()
    return json.loads(json.dumps({**defaults, **params}))


def make_generator(
    method: str,
    shape: tuple[int, int, int],
    condition: str | None,
    seed: int,
    params: dict[str, Any],
) -> Generator:
    """The generator ``method`` for ``(S, S, C)`` images, checked.

    Args:
        method: a registered generator name.
        shape: the image shape it works at.
        condition: the condition spec (``None``: the method's for the channel count).
        seed: the run's seed.
        params: other constructor parameters.

    Raises:
        InputError: an unknown method or parameter, or a parameter or condition out of range.
    """
    cls = GENERATORS.get(method)
    allowed = set(cls.param_names()) - set(FIXED_PARAMS)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InputError(
            f"unknown parameter(s) for {method}: {', '.join(unknown)}; known: "
            f"{', '.join(sorted(allowed)) or 'none'}"
        )
    kwargs = dict(params)
    kwargs["condition"] = condition if condition is not None else cls.default_condition(shape[2])
    generator = cls(shape[0], shape[2], seed=seed, **kwargs)
    generator.check_params()
    return generator


def train_or_load(
    generator: Generator,
    *,
    checkpoint_dir: Path,
    checkpoint: str | None,
    targets: np.ndarray,
    fit_sources: np.ndarray | None,
    target_masks: np.ndarray | None,
    train_steps: int | None,
    checkpoint_every: int | None,
    resume: bool,
    progress: bool,
    devices: list[str] | None = None,
) -> Generator:
    """Load ``checkpoint``, or the finished checkpoint in ``checkpoint_dir``, else train (or
    resume) into it. A checkpoint trained on other images or with other parameters is refused.
    With more than one of ``devices`` (:func:`brain.distributed.plan_devices`), a network
    generator trains data-parallel on them (:func:`generators.parallel.fit_on_devices`).

    Raises:
        InputError: a checkpoint of another method, parameters or images, or an unfinished
            training without ``resume``.
    """
    from generators.training import TRAIN_STATE_FILE

    size, channels = generator.image_size, generator.channels
    if checkpoint is not None:
        loaded = type(generator).load(checkpoint, image_size=size, channels=channels)
        return loaded.set_device(generator.device)
    if (checkpoint_dir / CARD_FILE).is_file():
        loaded = _finished(generator, checkpoint_dir, train_steps)
        if loaded is not None:
            if not loaded.trained_on(targets, fit_sources, target_masks):
                raise InputError(
                    f"the run's checkpoint in {checkpoint_dir} was trained on other images (did "
                    "the dataset change?); use another run name"
                )
            return loaded.set_device(generator.device)
    if generator.trains and (checkpoint_dir / TRAIN_STATE_FILE).is_file() and not resume:
        raise InputError(
            f"run checkpoint {checkpoint_dir} holds an unfinished training; set `resume` to "
            "continue it, or use another run name",
            params=("resume",),
        )
    if generator.trains and train_steps is not None and checkpoint_every is None:
        checkpoint_every = max(1, min(500, train_steps // 10))
    if generator.trains and devices is not None and len(devices) > 1:
        from generators.parallel import fit_on_devices

        return fit_on_devices(
            generator,
            devices,
            targets=targets,
            sources=fit_sources,
            masks=target_masks,
            steps=train_steps,
            checkpoint_dir=checkpoint_dir,
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
        )
    generator.fit(
        targets,
        fit_sources,
        masks=target_masks,
        steps=train_steps,
        checkpoint_dir=checkpoint_dir if generator.trains else None,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
    )
    if not generator.trains:
        generator.save(checkpoint_dir)
    return generator


def _finished(generator: Generator, folder: Path, train_steps: int | None) -> Generator | None:
    """The saved generator in ``folder`` if its training is complete (``None`` otherwise).

    Raises:
        InputError: the folder holds another method, or other parameters.
    """
    card = read_card(folder)
    if card["method"] != generator.method:
        raise InputError(
            f"{folder} holds a {card['method']!r} checkpoint, not {generator.method!r}"
        )
    wanted = json.loads(json.dumps(generator.get_params()))
    saved = with_defaults(generator.method, card["params"])
    changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
    if changed:
        raise InputError(
            f"the run's checkpoint was made with other parameters ({', '.join(changed)}); "
            "use another run name"
        )
    target = card.get("steps_target") or generator.capabilities().train_steps or 0
    if generator.trains and card.get("steps_trained", 0) < (train_steps or target):
        return None
    return type(generator).load(
        folder, image_size=generator.image_size, channels=generator.channels
    )
