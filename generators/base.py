"""The interface every generator shares, the generator registry, and saved generators.

A generator is an estimator on arrays (``uint8``, ``(N, H, W, C)``):

- ``fit(targets, sources=None, *, masks=None, steps=None, checkpoint_dir=None,
  checkpoint_every=None, resume=False, progress=True, callback=None) -> self`` learns from
  rare-class images ``targets`` (and, for some methods, ``sources``: the unpaired source domain or
  the other class). Learned state lives in attributes ending in ``_``; ``loss_history_`` holds
  one training loss per step (empty for methods that do not train).
- ``generate(sources, seeds, *, masks=None, steps=None, batch_size=None, progress=False)`` makes
  one image per ``(source, seed)`` pair. The output for a pair depends only on that source image,
  that seed and the fitted state, not on what else is in the batch.
- ``get_params()`` / ``set_params(**params)``: scikit-learn's (a generator is a
  :class:`~sklearn.base.BaseEstimator`); using an unfitted generator raises scikit-learn's
  :class:`~sklearn.exceptions.NotFittedError`.
- ``save(path)`` writes a folder with ``generator.json`` (the card: method, image size,
  channels, condition, parameters, digest) and ``weights.safetensors`` (no pickle);
  ``Generator.load(path)`` rebuilds the generator (checking method and shape).
- ``checkpoint_digest``: sha256 of the weights used for generation (names, dtypes, shapes, bytes).
- ``capabilities()``: what the configured generator needs and can do (its checked condition,
  masks, default budgets), read by callers instead of its internals.

Importing this module (and the method modules) does not import torch: the CLI can list methods
quickly. Torch is imported where a network is built or run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from brain.errors import InputError
from brain.registry import Registry
from generators.arrays import check_images, check_seeds, seeded_rng, to_float
from generators.cards import (
    CARD_FILE,
    CARD_VERSION,
    WEIGHTS_FILE,
    read_card,
    training_data_digest,
    weights_digest,
    write_json,
)
from generators.conditions import Condition, check_masks, condition_options, make_condition

GENERATORS: Registry[type[Generator]] = Registry("generator")


@dataclass(frozen=True)
class Capabilities:
    """What a configured generator needs and can do (see :meth:`Generator.capabilities`).

    Attributes:
        method: the registry name.
        condition: the checked condition spec (``channel:2``, ``masked``, ...).
        uses_masks: whether ``generate`` takes masks of the sources.
        fits_masks: whether ``fit`` takes masks of the rare-class images.
        trains: whether ``fit`` trains a network for a number of steps.
        train_steps: the default number of training steps (``None``: does not train).
        samples_in_steps: whether ``generate`` takes a number of sampling steps.
        sampling_steps: the default number of sampling steps (``None``: none).
        finite_outputs: whether a source gives a finite set of images over seeds.
        fit_sources: what ``fit`` takes as ``sources`` (see :attr:`Generator.fit_sources`).
        default_source: the source view used when none is named.
        min_train_images: the fewest rare-class images ``fit`` accepts.
    """

    method: str
    condition: str
    uses_masks: bool
    fits_masks: bool
    trains: bool
    train_steps: int | None
    samples_in_steps: bool
    sampling_steps: int | None
    finite_outputs: bool
    fit_sources: str | None
    default_source: str
    min_train_images: int

    def replace(self, **changes: Any) -> Capabilities:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


class Generator(BaseEstimator):
    """Base class of all generators (see the module docstring for the contract).

    Subclasses set ``method`` (the registry name) and ``min_train_images`` (a class attribute,
    or a parameter for the methods that train), list all their parameters with defaults in their
    ``__init__`` signature (scikit-learn's ``get_params`` reads it; the network generators add
    their shared :class:`~generators.training.TrainingSettings`), store them unchanged under the
    same names (``image_size``, ``channels``, ``condition`` and ``seed`` through this
    ``__init__``), and implement ``_fit``, ``_generate``, ``_weights`` and ``_set_weights``.
    Methods narrow the conditions they accept with :meth:`condition_problem` and pick one per
    channel count with :meth:`default_condition`.
    """

    method: ClassVar[str] = ""
    #: The fewest rare-class images ``fit`` accepts.
    min_train_images: int = 1
    #: Whether ``fit`` needs ``sources`` (e.g. the other class for ADASYN).
    requires_fit_sources: ClassVar[bool] = False
    #: Whether the method trains a network for a number of steps.
    trains: ClassVar[bool] = False
    #: Whether ``generate`` takes a number of sampling steps.
    samples_in_steps: ClassVar[bool] = False
    #: Whether a source gives a finite set of images over seeds (see :meth:`distinct_images`).
    finite_outputs: ClassVar[bool] = False
    #: What ``fit`` gets as ``sources`` in a dataset: ``None``, ``"source-domain"`` (the source
    #: view's train/pool images) or ``"other-class"`` (the real train images of the other class).
    fit_sources: ClassVar[str | None] = None
    #: The source view used when none is named.
    default_source: ClassVar[str] = "rare-train"
    #: Whether ``fit`` takes masks of the rare-class images (with a mask condition).
    fits_masks: ClassVar[bool] = False
    #: Where networks run (``auto``, ``cpu``, ``cuda``); see :meth:`set_device`.
    device: str = "auto"

    image_size: int
    channels: int
    condition: str | Condition
    seed: int
    #: sha256 of the arrays ``fit`` saw (see :meth:`trained_on`); ``None`` before ``fit``.
    data_digest_: str | None = None
    #: Share of the run each fitted rare image should source (ADASYN), else ``None``.
    source_weights_: np.ndarray | None = None

    def __init__(
        self, image_size: int, channels: int, *, condition: str | Condition, seed: int
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.condition = condition
        self.seed = seed

    # -- parameters -------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """The constructor's parameter names, sorted (the keys of :meth:`get_params`)."""
        return cls._get_param_names()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """scikit-learn's parameters, with the condition as its spec string."""
        params = super().get_params(deep=deep)
        if isinstance(params.get("condition"), Condition):
            params["condition"] = params["condition"].spec()
        return params

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The constructor's parameters that have a default, with it."""
        signature = inspect.signature(cls.__init__)
        return {
            name: p.default
            for name, p in signature.parameters.items()
            if name != "self" and p.default is not inspect.Parameter.empty
        }

    @classmethod
    def default_condition(cls, channels: int) -> str:
        """The condition used for ``channels``-channel images when none is asked for."""
        return cls.default_params()["condition"]

    @classmethod
    def condition_problem(cls, condition: Condition, channels: int) -> str | None:
        """Why ``condition`` does not fit this method on ``channels``-channel images (``None``
        when it does)."""
        try:
            condition.validate(channels)
        except InputError as error:
            return str(error)
        return None

    @classmethod
    def valid_conditions(cls, channels: int) -> list[str]:
        """The condition specs this method accepts on ``channels``-channel images
        (``blur:SIGMA`` standing for any positive sigma)."""
        options = condition_options(channels)
        return [c.usage() for c in options if cls.condition_problem(c, channels) is None]

    def checked_condition(self) -> Condition:
        """The condition, checked against the method and the channel count.

        Raises:
            InputError: naming the problem and the conditions that would work.
        """
        channels = int(self.channels)
        try:
            condition = make_condition(self.condition)
            problem = self.condition_problem(condition, channels)
        except InputError as error:
            condition, problem = None, str(error)
        if problem is not None:
            valid = ", ".join(self.valid_conditions(channels))
            raise InputError(
                f"{problem}; valid for {self.method} on {channels}-channel images: {valid}"
            )
        return condition

    def check_params(self) -> None:
        """Check the constructor parameters (``fit`` and ``load`` call it).

        Raises:
            InputError: naming the first parameter out of range, or a condition that does not
                fit the method and the channel count.
        """
        if int(self.image_size) < 4:
            raise InputError(f"image_size must be at least 4, got {self.image_size}")
        if int(self.channels) < 1:
            raise InputError(f"channels must be at least 1, got {self.channels}")
        self.checked_condition()

    def capabilities(self) -> Capabilities:
        """What this configured generator needs and can do (the condition is checked).

        Raises:
            InputError: a condition that does not fit the method and the channel count.
        """
        condition = self.checked_condition()
        return Capabilities(
            method=self.method,
            condition=condition.spec(),
            uses_masks=self.uses_masks(),
            fits_masks=self.fits_masks and condition.uses_masks,
            trains=self.trains,
            train_steps=None,
            samples_in_steps=self.samples_in_steps,
            sampling_steps=None,
            finite_outputs=self.finite_outputs,
            fit_sources=self.fit_sources,
            default_source=self.default_source,
            min_train_images=int(self.min_train_images),
        )

    def training_warnings(self, n_images: int) -> list[str]:
        """Warnings about fitting on ``n_images`` rare-class images (none by default)."""
        return []

    # -- fit / generate ---------------------------------------------------------------------
    def fit(
        self,
        targets: np.ndarray,
        sources: np.ndarray | None = None,
        *,
        masks: np.ndarray | None = None,
        steps: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        progress: bool = True,
        callback: Callable[[int, float], None] | None = None,
    ) -> Generator:
        """Learn from rare-class images.

        Args:
            targets: rare-class images, ``uint8 (N, S, S, C)``.
            sources: unpaired source-domain or other-class images, where the method uses them.
            masks: regions of ``targets`` (``(N, S, S)``, nonzero = region) for the ``masked``
                condition; random boxes when omitted.
            steps: total training steps (methods that train; a default when omitted).
            checkpoint_dir: folder for checkpoints (a saved generator plus training state).
            checkpoint_every: write a checkpoint every this many steps (and at the end).
            resume: continue from the training state in ``checkpoint_dir`` if there is one.
            progress: show a progress bar.
            callback: called as ``callback(step, loss)`` after each training step.

        Returns:
            self

        Raises:
            InputError: on too few images, a wrong shape, a bad condition or mask, or a
                checkpoint that does not match.
        """
        self.check_params()
        targets, sources, masks = self._training_arrays(targets, sources, masks)
        if steps is not None and int(steps) < 1:
            raise InputError(f"steps must be at least 1, got {steps}")
        if checkpoint_every is not None and int(checkpoint_every) < 1:
            raise InputError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
        self.data_digest_ = training_data_digest(targets, sources, masks)
        self._fit(
            targets,
            sources,
            masks=masks,
            steps=None if steps is None else int(steps),
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
            checkpoint_every=checkpoint_every,
            resume=resume,
            progress=progress,
            callback=callback,
        )
        return self

    def _training_arrays(
        self, targets: np.ndarray, sources: np.ndarray | None, masks: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``fit``'s inputs validated (and masks squeezed to ``(N, S, S)``)."""
        targets = check_images(
            targets, "rare-class images", image_size=self.image_size, channels=self.channels
        )
        if len(targets) < self.min_train_images:
            raise InputError(
                f"{self.method} needs at least {self.min_train_images} rare-class images to "
                f"train, got {len(targets)}"
            )
        if sources is not None:
            sources = check_images(
                sources, "source images", image_size=self.image_size, channels=self.channels
            )
        elif self.requires_fit_sources:
            raise InputError(f"{self.method} needs images of the other class to fit")
        if masks is not None:
            masks = check_masks(masks, len(targets), self.image_size)
        return targets, sources, masks

    def trained_on(
        self,
        targets: np.ndarray,
        sources: np.ndarray | None = None,
        masks: np.ndarray | None = None,
    ) -> bool:
        """Whether ``fit`` saw exactly these arrays (``True`` for a checkpoint that predates
        the record of its training data)."""
        if self.data_digest_ is None:
            return True
        arrays = self._training_arrays(targets, sources, masks)
        return training_data_digest(*arrays) == self.data_digest_

    def generate(
        self,
        sources: np.ndarray,
        seeds: Sequence[int],
        *,
        masks: np.ndarray | None = None,
        steps: int | None = None,
        batch_size: int | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """One image per ``(source, seed)`` pair, ``uint8 (N, S, S, C)``.

        Args:
            sources: source images, ``uint8 (N, S, S, C)`` of the fitted shape.
            seeds: one non-negative integer per source.
            masks: ``(N, S, S)`` regions to regenerate (nonzero), for masked methods;
                random boxes when omitted.
            steps: sampling steps, for diffusion methods (their default when omitted).
            batch_size: images per batch (the method's default when omitted).
            progress: show a progress bar.

        Raises:
            InputError: on a wrong shape, seeds or masks.
            NotFittedError: before ``fit`` or ``load``.
        """
        self._check_fitted()
        sources = check_images(
            sources, "source images", image_size=self.image_size, channels=self.channels
        )
        seeds = check_seeds(seeds, len(sources))
        if masks is not None:
            if not self.uses_masks():
                raise InputError(f"{self.method} with this condition does not use masks")
            masks = check_masks(masks, len(sources), self.image_size)
        if steps is not None:
            self.check_sampling_steps(int(steps))
        batch = int(batch_size or self._default_batch_size())
        outputs = []
        from brain.progress import progress_bar

        with progress_bar(
            total=len(sources), unit="img", desc=self.method, enabled=progress
        ) as bar:
            for start in range(0, len(sources), batch):
                part = slice(start, start + batch)
                out = self._generate(
                    sources[part], seeds[part], None if masks is None else masks[part], steps
                )
                outputs.append(out)
                bar.update(len(out))
        return np.concatenate(outputs, axis=0)

    # -- persistence ------------------------------------------------------------------------
    @property
    def checkpoint_digest(self) -> str:
        """sha256 of the weights used for generation."""
        self._check_fitted()
        return weights_digest(self._weights())

    def card(self) -> dict[str, Any]:
        """What ``save`` writes to ``generator.json``."""
        return {
            "card_version": CARD_VERSION,
            "method": self.method,
            "image_size": int(self.image_size),
            "channels": int(self.channels),
            "condition": make_condition(self.condition).spec(),
            "params": self.get_params(),
            "digest": self.checkpoint_digest,
            "steps_trained": len(self.loss_history_),
            "data_digest": self.data_digest_,
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the card, the weights and the loss history to the folder ``path``."""
        from safetensors.numpy import save_file

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = {k: np.ascontiguousarray(v) for k, v in self._weights().items()}
        tmp = path / f".{WEIGHTS_FILE}.tmp"
        save_file(weights, str(tmp))
        os.replace(tmp, path / WEIGHTS_FILE)
        write_json([float(v) for v in self.loss_history_], path / "loss_history.json")
        write_json(self.card(), path / CARD_FILE)
        return path

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        image_size: int | None = None,
        channels: int | None = None,
    ) -> Generator:
        """Rebuild a saved generator.

        Called on ``Generator`` it loads any method; called on a subclass it requires that method.
        ``image_size`` / ``channels``, when given, must match the saved ones.

        Raises:
            InputError: on a missing or foreign checkpoint, a card with unknown parameters, or a
                method or shape mismatch.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        card = read_card(path)
        if cls.method and card["method"] != cls.method:
            raise InputError(
                f"checkpoint in {path} is from method {card['method']!r}, not {cls.method!r}"
            )
        for name, wanted in (("image_size", image_size), ("channels", channels)):
            if wanted is not None and int(card.get(name, -1)) != int(wanted):
                raise InputError(
                    f"checkpoint in {path} has {name} {card.get(name)}, but {wanted} is needed"
                )
        method_cls = GENERATORS.get(card["method"])
        unknown = sorted(set(card["params"]) - set(method_cls.param_names()))
        if unknown:
            raise InputError(
                f"the card in {path} has unknown parameter(s) {', '.join(unknown)} for method "
                f"{card['method']!r}"
            )
        generator = method_cls(**card["params"])
        generator.check_params()
        try:
            weights = load_file(str(Path(path) / WEIGHTS_FILE))
        except (OSError, SafetensorError) as error:
            raise InputError(f"cannot read the weights in {path}: {error}") from None
        if weights_digest(weights) != card.get("digest"):
            raise InputError(f"the weights in {path} do not match the digest of their card")
        generator._set_weights(weights)
        generator.data_digest_ = card.get("data_digest")
        history = Path(path) / "loss_history.json"
        generator.loss_history_ = json.loads(history.read_text()) if history.is_file() else []
        return generator

    def set_device(self, device: str) -> Generator:
        """Where networks run (``auto``, ``cpu``, ``cuda``); methods without networks ignore it."""
        return self

    def check_sampling_steps(self, steps: int) -> None:
        """Raise :class:`InputError` if ``steps`` sampling steps are not possible."""
        if steps < 1:
            raise InputError(f"sampling steps must be at least 1, got {steps}")

    # -- hooks ------------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` or ``load`` has run (what ``check_is_fitted`` asks)."""
        return hasattr(self, "loss_history_")

    def _check_fitted(self) -> None:
        """Raise scikit-learn's ``NotFittedError`` before ``fit`` or ``load``."""
        check_is_fitted(self, msg="%(name)s is not fitted; call fit or load first")

    def uses_masks(self) -> bool:
        """Whether ``generate`` takes masks of the sources (with this condition)."""
        return make_condition(self.condition).uses_masks

    def _condition_sources(
        self, sources: np.ndarray, seeds: list[int], masks: np.ndarray | None
    ) -> np.ndarray:
        """``y = c(source)`` as floats, each source conditioned with the randomness of its seed."""
        condition = self.checked_condition()
        x = to_float(sources)
        return np.concatenate(
            [
                condition(
                    x[i : i + 1], seeded_rng(seed), None if masks is None else masks[i : i + 1]
                )
                for i, seed in enumerate(seeds)
            ]
        )

    def _default_batch_size(self) -> int:
        return 64

    def distinct_images(self, sources: np.ndarray) -> np.ndarray | None:
        """How many different images each source gives over consecutive seeds, for methods
        with ``finite_outputs`` (``None`` otherwise); a run asking a source for more would repeat
        images."""
        return None

    def _fit(
        self,
        targets,
        sources,
        *,
        masks,
        steps,
        checkpoint_dir,
        checkpoint_every,
        resume,
        progress,
        callback,
    ) -> None:
        raise NotImplementedError

    def _generate(
        self,
        sources: np.ndarray,
        seeds: list[int],
        masks: np.ndarray | None,
        steps: int | None,
    ) -> np.ndarray:
        raise NotImplementedError

    def _weights(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError
