"""BBDM as a generator: trains the bridge on rare-class pairs ``(x0, y = c(x0))``, translates
sources ``y = c(source)`` into rare-class images."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from curation.errors import CurateError
from generators.base import GENERATORS, seeded_rng, to_float, to_uint8
from generators.training import (
    TorchGenerator,
    TrainingData,
    ema_update,
    load_module_weights,
    module_weights,
    nhwc_to_tensor,
    random_flips,
    tensor_to_nhwc,
)

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
class BBDMGenerator(TorchGenerator):
    """Brownian Bridge Diffusion Model (pixel space) mapping a condition image to a rare-class one.

    Trained on rare-class images only: each target ``x0`` is paired with ``y = c(x0)`` (its DAPI
    channel, a masked copy, ...); at generation ``y = c(source)`` for each source image (a DAPI
    pool crop, a common-class image) and the bridge is walked from ``y`` back to ``x0_hat``.
    Training follows the study (Adam, L1 on the "grad" target, ReduceLROnPlateau on the training
    loss with factor 0.5 / threshold 1e-4 / min lr 5e-7, EMA decay 0.995) with the schedule
    scaled to short runs (:func:`scaled_schedule`); batches are drawn with replacement and
    flipped at random. Generation uses the EMA weights.

    Args:
        image_size: side of the square images.
        channels: channels of targets and sources.
        condition: condition spec (``"channel:2"``, ``"masked"``, ``"grayscale"``, ``"blur:2"``).
        preset: UNet size (``tiny``, ``cpu``, ``gpu``, ``gpu-large``; see ``bbdm.model``).
        num_timesteps: ``T``.
        sampling_steps: default number of sampling steps (``generate(steps=...)`` overrides).
        batch_size: training batch size.
        lr: Adam learning rate.
        ema_decay: EMA decay per update.
        eta: noise scale of the sampler.
        flip: random horizontal and vertical flips during training.
        seed: seeds the initialisation and all training randomness.
    """

    method = "bbdm"
    min_train_images = 8
    samples_in_steps = True
    default_source = "pool"

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "channel:2",
        preset: str = "cpu",
        num_timesteps: int = 1000,
        sampling_steps: int = 200,
        batch_size: int = 8,
        lr: float = 1e-4,
        ema_decay: float = 0.995,
        eta: float = 1.0,
        flip: bool = True,
        seed: int = 0,
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.condition = condition
        self.preset = preset
        self.num_timesteps = num_timesteps
        self.sampling_steps = sampling_steps
        self.batch_size = batch_size
        self.lr = lr
        self.ema_decay = ema_decay
        self.eta = eta
        self.flip = flip
        self.seed = seed

    def _validate_params(self) -> None:
        from generators.bbdm.model import check_preset

        super()._validate_params()
        check_preset(self.preset, int(self.image_size))
        if int(self.num_timesteps) < 3:
            raise CurateError(f"num_timesteps must be at least 3, got {self.num_timesteps}")
        if int(self.sampling_steps) < 3:
            raise CurateError(f"sampling steps must be at least 3, got {self.sampling_steps}")
        if int(self.batch_size) < 1:
            raise CurateError(f"batch_size must be at least 1, got {self.batch_size}")

    def check_sampling_steps(self, steps: int) -> None:
        if steps < 3:
            raise CurateError(f"bbdm needs at least 3 sampling steps, got {steps}")

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
        self.unet_ = self._make_unet()
        self.ema_unet_ = copy.deepcopy(self.unet_).requires_grad_(False)
        self.optimizer_ = torch.optim.Adam(self.unet_.parameters(), lr=self.lr)
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
        self.nets_ = {"unet": self.unet_, "ema": self.ema_unet_}
        self.optimizers_ = {"adam": self.optimizer_}
        self.lr_schedulers_ = {"plateau": self.lr_scheduler_}

    def _train_step(self, data: TrainingData, total_steps: int) -> float:
        import torch

        index = self.rng_.integers(0, len(data.targets), size=self.batch_size)
        x0 = to_float(data.targets[index])
        masks = None if data.masks is None else data.masks[index]
        if self.flip:
            x0, masks = random_flips(x0, self.rng_, masks)
        y = self._condition()(x0, self.rng_, masks)
        device = self._device()
        x0_t, y_t = nhwc_to_tensor(x0, device), nhwc_to_tensor(y, device)
        t = torch.randint(0, self.num_timesteps, (len(index),), generator=self.torch_rng_)
        noise = torch.randn(x0_t.shape, generator=self.torch_rng_)
        t, noise = t.to(device), noise.to(device)
        x_t = self.bridge_.add_noise(x0_t, y_t, noise, t)
        target = self.bridge_.training_target(x0_t, y_t, noise, t)
        prediction = self.unet_(torch.cat([x_t, y_t], dim=1), t).sample
        loss = (prediction - target).abs().mean()
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer_.step()
        value = float(loss.detach())
        self.lr_scheduler_.step(value)
        return value

    def _after_step(self, total_steps: int) -> None:
        if self.step_ % self.schedule_["ema_every"] == 0:
            decay = self.ema_decay if self.step_ >= self.schedule_["ema_start"] else 0.0
            ema_update(self.ema_unet_, self.unet_, decay)

    # -- weights ------------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        return module_weights(self.ema_unet_)

    def _set_weights(self, weights) -> None:
        self.ema_unet_ = self._make_unet().requires_grad_(False)
        load_module_weights(self.ema_unet_, dict(weights))
        self.ema_unet_.to(self._device()).eval()

    # -- generation ---------------------------------------------------------------------------
    def _default_batch_size(self) -> int:
        return 16

    def _generate(self, sources, seeds, masks, steps) -> np.ndarray:
        import torch

        from generators.bbdm.pipeline import BBDMPipeline

        condition = self._condition()
        x = to_float(sources)
        y = np.concatenate(
            [
                condition(
                    x[i : i + 1], seeded_rng(seed), None if masks is None else masks[i : i + 1]
                )
                for i, seed in enumerate(seeds)
            ]
        )
        generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        pipeline = BBDMPipeline(self.ema_unet_.eval(), self._scheduler())
        images = pipeline(
            nhwc_to_tensor(y, self._device()),
            num_inference_steps=int(steps or self.sampling_steps),
            generator=generators,
        )
        return to_uint8(tensor_to_nhwc(images))
