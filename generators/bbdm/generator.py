"""BBDM as a generator: trains the bridge on rare-class pairs ``(x0, y = c(x0))``, translates
sources ``y = c(source)`` into rare-class images."""

from __future__ import annotations

from typing import Any

import numpy as np

from brain import distributed
from brain.errors import InputError
from generators.arrays import from_float
from generators.base import GENERATORS
from generators.batches import TrainingData, draw_batch
from generators.conditions import Condition
from generators.tensors import ema_update, nhwc_to_tensor, seeded_generators, tensor_to_nhwc
from generators.training import DiffusionGenerator

#: The study's schedule (METHOD.md); ``scaled_schedule`` shrinks it for short runs.
STUDY_PATIENCE = 3000
STUDY_EMA_START = 30_000
STUDY_EMA_EVERY = 16


def scaled_schedule(total_steps: int) -> dict[str, int]:
    """The study's plateau patience / cooldown and EMA start / interval, scaled to a run.

    At 60,000+ steps these are the study's values (patience = cooldown = 3000, EMA from step
    30,000 every 16 steps); shorter runs use 1/20 of the run for patience and cooldown (at least
    10), start the EMA at 1/5 of the run and update it every ``total / 1000`` steps (1 to 16).
    """
    return {
        "patience": min(STUDY_PATIENCE, max(10, total_steps // 20)),
        "ema_start": min(STUDY_EMA_START, total_steps // 5),
        "ema_every": min(STUDY_EMA_EVERY, max(1, total_steps // 1000)),
    }


@GENERATORS.register("bbdm")
class BBDMGenerator(DiffusionGenerator):
    """Brownian Bridge Diffusion Model (pixel space) mapping a condition image to a rare-class one.

    Trained on rare-class images only: each target ``x0`` is paired with ``y = c(x0)`` (its DAPI
    channel, a masked copy, ...); at generation ``y = c(source)`` for each source image (a DAPI
    pool crop, a common-class image) and the bridge is walked from ``y`` back to ``x0_hat``.
    Training follows the study (Adam, L1 on the "grad" target, ReduceLROnPlateau on the training
    loss with factor 0.5 / threshold 1e-4 / min lr 5e-7, EMA decay 0.995) with the schedule
    scaled to short runs (:func:`scaled_schedule`); batches are drawn with replacement and
    flipped at random (turned and shifted too with fewer than 8 images, see
    ``generators.training.draw_batch``). Generation uses the EMA weights.

    The condition must change the image: ``channel:0`` and ``grayscale`` on one-channel images
    are the identity (the bridge would learn nothing). The default follows the channel count:
    ``channel:2`` (the DAPI-like blue channel) from three channels on, else ``blur:3``.

    Args:
        image_size: side of the square images.
        channels: channels of targets and sources.
        condition: condition spec (``"channel:2"``, ``"masked"``, ``"grayscale"``, ``"blur:2"``).
        eta: noise scale of the sampler.
        seed: seeds the initialisation and all training randomness.
        **training: the :class:`~generators.training.DiffusionSettings` keywords (``preset``,
            ``num_timesteps``, ``sampling_steps``, ``batch_size``, ``lr``, ``ema_decay``,
            ``flip``, ``min_train_images``), with their defaults.
    """

    method = "bbdm"
    default_source = "pool"
    fits_masks = True

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "channel:2",
        eta: float = 1.0,
        seed: int = 0,
        **training: Any,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed, **training)
        self.eta = eta

    @classmethod
    def default_condition(cls, channels: int) -> str:
        return "channel:2" if channels >= 3 else "blur:3"

    @classmethod
    def condition_problem(cls, condition: Condition, channels: int) -> str | None:
        problem = super().condition_problem(condition, channels)
        if problem is None and condition.is_identity(channels):
            problem = (
                f"condition {condition.spec()!r} leaves {channels}-channel images unchanged, so "
                "the bridge would learn nothing"
            )
        return problem

    def check_params(self) -> None:
        super().check_params()
        if int(self.num_timesteps) < 3:
            raise InputError(f"num_timesteps must be at least 3, got {self.num_timesteps}")
        if int(self.sampling_steps) < 3:
            raise InputError(f"sampling steps must be at least 3, got {self.sampling_steps}")

    def check_sampling_steps(self, steps: int) -> None:
        if steps < 3:
            raise InputError(f"bbdm needs at least 3 sampling steps, got {steps}")

    # -- training -----------------------------------------------------------------------------
    def _make_unet(self) -> Any:
        from generators.bbdm.model import make_unet

        return make_unet(self.preset, self.image_size, 2 * self.channels, self.channels)

    def _scheduler(self) -> Any:
        from generators.bbdm.scheduler import BrownianBridgeScheduler

        return BrownianBridgeScheduler(self.num_timesteps, eta=self.eta)

    def _build(self, total_steps: int) -> None:
        import torch

        self.schedule_ = scaled_schedule(total_steps)
        self._build_unet()
        self.lr_scheduler_ = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer_,
            mode="min",
            factor=0.5,
            patience=self.schedule_["patience"],
            cooldown=self.schedule_["patience"],
            threshold=1e-4,
            min_lr=5e-7,
        )
        self.bridge_ = self._scheduler()
        self.lr_schedulers_ = {"plateau": self.lr_scheduler_}

    def _train_step(self, data: TrainingData, total_steps: int) -> float:
        import torch

        x0, masks = draw_batch(
            data.targets, self.rng_, self.batch_size, flip=self.flip, masks=data.masks
        )
        y = self.checked_condition()(x0, self.rng_, masks)
        device = self._device()
        x0_t, y_t = nhwc_to_tensor(x0, device), nhwc_to_tensor(y, device)
        t = torch.randint(0, self.num_timesteps, (len(x0),), generator=self.torch_rng_)
        noise = torch.randn(x0_t.shape, generator=self.torch_rng_)
        t, noise = t.to(device), noise.to(device)
        x_t = self.bridge_.add_noise(x0_t, y_t, noise, t)
        target = self.bridge_.training_target(x0_t, y_t, noise, t)
        prediction = self.unet_(torch.cat([x_t, y_t], dim=1), t).sample
        loss = (prediction - target).abs().mean()
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        self._step(self.optimizer_)
        value = distributed.mean_value(float(loss.detach()))  # one plateau schedule on all ranks
        self.lr_scheduler_.step(value)
        return value

    def _after_step(self, total_steps: int) -> None:
        if self.step_ % self.schedule_["ema_every"] == 0:
            decay = self.ema_decay if self.step_ >= self.schedule_["ema_start"] else 0.0
            ema_update(self.ema_unet_, self.unet_, decay)

    # -- generation ---------------------------------------------------------------------------
    def _generate(self, sources, seeds, masks, steps) -> np.ndarray:
        from generators.bbdm.pipeline import BBDMPipeline

        y = self._condition_sources(sources, seeds, masks)
        pipeline = BBDMPipeline(self.ema_unet_.eval(), self._scheduler())
        images = pipeline(
            nhwc_to_tensor(y, self._device()),
            num_inference_steps=int(steps or self.sampling_steps),
            generator=seeded_generators(seeds),
        )
        return from_float(tensor_to_nhwc(images))
