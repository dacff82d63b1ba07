"""Masked diffusion, normal -> abnormal (Paulikat et al.): inpaint a region of a common-class image
with a DDPM trained on rare-class images, using RePaint (diffusers' ``RePaintScheduler``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from brain.errors import InputError
from generators.arrays import from_float, seeded_rng, to_float
from generators.base import GENERATORS
from generators.batches import TrainingData, draw_batch
from generators.conditions import Condition, random_boxes
from generators.tensors import (
    ema_update,
    in_fixed_chunks,
    nhwc_to_tensor,
    seeded_generators,
    tensor_to_nhwc,
)
from generators.training import DiffusionGenerator, DiffusionSettings


@GENERATORS.register("masked_ddpm")
class MaskedDDPMGenerator(DiffusionGenerator):
    """An epsilon-prediction DDPM on rare-class images that inpaints masked regions of sources.

    Training: a ``UNet2DModel`` (``in = out = C`` channels, presets of ``bbdm.model``) learns to
    predict the noise added by a linear-beta DDPM schedule (``T`` steps), MSE loss, Adam, EMA of
    the weights (decay ``ema_decay``, from the first step) used for generation. It models whole
    rare-class images; ``fit`` takes no masks.
    Generation (RePaint, Lugmayr et al. 2022): for each source a region (the given mask, nonzero =
    inpaint, or a random box from the seed) is regenerated from noise while the rest is kept from
    the source, with ``jump_length`` / ``jump_n_sample`` resampling jumps (RePaint's paper uses
    250 steps, 10 / 10; the defaults here are cheaper for CPU). ``condition`` must be ``masked``:
    the region is what changes.

    Args:
        image_size: side of the square images.
        channels: image channels.
        condition: ``"masked"``.
        jump_length: RePaint jump length.
        jump_n_sample: RePaint resamplings per jump.
        seed: seeds the initialisation and all training randomness.
        **training: the :class:`~generators.training.DiffusionSettings` keywords (``preset``,
            ``num_timesteps``, ``sampling_steps`` = RePaint steps before jumps, 100 here,
            ``batch_size``, ``lr``, ``ema_decay`` (per step), ``flip``, ``min_train_images``).
    """

    method = "masked_ddpm"
    default_source = "common-train"
    training_defaults = DiffusionSettings(sampling_steps=100)

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "masked",
        jump_length: int = 10,
        jump_n_sample: int = 3,
        seed: int = 0,
        **training: Any,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed, **training)
        self.jump_length = jump_length
        self.jump_n_sample = jump_n_sample

    @classmethod
    def condition_problem(cls, condition: Condition, channels: int) -> str | None:
        problem = super().condition_problem(condition, channels)
        if problem is None and not condition.uses_masks:
            problem = f"masked_ddpm needs the 'masked' condition, got {condition.spec()!r}"
        return problem

    def check_params(self) -> None:
        super().check_params()
        for name in ("num_timesteps", "sampling_steps", "jump_length", "jump_n_sample"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")

    def _make_unet(self) -> Any:
        from generators.bbdm.model import make_unet

        return make_unet(self.preset, self.image_size, self.channels, self.channels)

    def _fit(self, targets, sources, *, masks, **kwargs) -> None:
        if masks is not None:
            raise InputError("masked_ddpm learns whole rare-class images; masks are for generation")
        super()._fit(targets, sources, masks=masks, **kwargs)

    # -- training -----------------------------------------------------------------------------
    def _build(self, total_steps: int) -> None:
        from diffusers import DDPMScheduler

        self._build_unet()
        self.noise_scheduler_ = DDPMScheduler(
            num_train_timesteps=self.num_timesteps, beta_schedule="linear"
        )

    def _train_step(self, data: TrainingData, total_steps: int) -> float:
        import torch
        import torch.nn.functional as F

        x0, _ = draw_batch(data.targets, self.rng_, self.batch_size, flip=self.flip)
        device = self._device()
        x0_t = nhwc_to_tensor(x0, device)
        noise = torch.randn(x0_t.shape, generator=self.torch_rng_).to(device)
        t = torch.randint(0, self.num_timesteps, (len(x0),), generator=self.torch_rng_)
        t = t.to(device)
        noisy = self.noise_scheduler_.add_noise(x0_t, noise, t)
        loss = F.mse_loss(self.unet_(noisy, t).sample, noise)
        self.optimizer_.zero_grad(set_to_none=True)
        loss.backward()
        self._step(self.optimizer_)
        return float(loss.detach())

    def _after_step(self, total_steps: int) -> None:
        ema_update(self.ema_unet_, self.unet_, self.ema_decay if self.step_ > 1 else 0.0)

    # -- generation ---------------------------------------------------------------------------
    def uses_masks(self) -> bool:
        return True

    def _generate(self, sources, seeds, masks, steps) -> np.ndarray:
        import torch
        from diffusers import RePaintScheduler

        regions = np.concatenate(
            [
                random_boxes(1, self.image_size, seeded_rng(seed, 1))
                if masks is None
                else masks[i : i + 1]
                for i, seed in enumerate(seeds)
            ]
        )
        device = self._device()
        original = nhwc_to_tensor(to_float(sources), device)
        keep = torch.from_numpy((~regions)[:, None].astype(np.float32)).to(device)  # 1 = keep
        generators = seeded_generators(seeds)
        scheduler = RePaintScheduler(num_train_timesteps=self.num_timesteps, beta_schedule="linear")
        scheduler.set_timesteps(
            min(int(steps or self.sampling_steps), self.num_timesteps),
            jump_length=self.jump_length,
            jump_n_sample=self.jump_n_sample,
        )
        image = torch.stack([torch.randn(original.shape[1:], generator=g) for g in generators])
        image = image.to(device)
        unet = self.ema_unet_.eval()
        t_last = int(scheduler.timesteps[0]) + 1
        with torch.no_grad():
            for t in scheduler.timesteps:
                t = int(t)
                if t < t_last:  # denoise x_t -> x_{t-1}, keeping the known region
                    t_batch = torch.full((len(image),), t, dtype=torch.long, device=device)
                    output = in_fixed_chunks(lambda x, t: unet(x, t).sample, image, t_batch)
                    image = scheduler.step(
                        output, t, image, original, keep, generator=generators
                    ).prev_sample
                else:  # a resampling jump: x_{t-1} -> x_t
                    image = scheduler.undo_step(image, t_last, generator=generators)
                t_last = t
        return from_float(tensor_to_nhwc(image))
