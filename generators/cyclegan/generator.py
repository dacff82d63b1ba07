"""CycleGAN as a generator: unpaired translation from the source domain to the rare class."""

from __future__ import annotations

from typing import Any

import numpy as np

from brain.errors import InputError
from generators.arrays import from_float
from generators.base import GENERATORS
from generators.batches import TrainingData, draw_batch
from generators.tensors import (
    in_fixed_chunks,
    load_module_weights,
    module_weights,
    nhwc_to_tensor,
    tensor_to_nhwc,
)
from generators.training import TorchGenerator, TrainingSettings


def scaled_architecture(image_size: int) -> dict[str, int]:
    """The public defaults scaled to the image size.

    Residual blocks: 6 up to 128 px, 9 above (as the public code). Discriminator stride-2 layers:
    3 (the 70x70 PatchGAN) from 128 px, 2 from 64 px (a 34x34 patch), 1 below (16x16).
    """
    n_layers = 3 if image_size >= 128 else 2 if image_size >= 64 else 1
    return {"n_blocks": 6 if image_size <= 128 else 9, "n_layers_d": n_layers}


@GENERATORS.register("cyclegan")
class CycleGANGenerator(TorchGenerator):
    """CycleGAN (Zhu et al. 2017) from domain A = ``c(source)`` to domain B = rare class.

    Domain A is the condition applied to the ``sources`` given to ``fit`` (e.g. the DAPI channel
    of pool crops, repeated to all channels so the identity loss applies); when ``fit`` gets no
    sources, A is the condition of the rare-class images themselves, drawn independently of B
    (unpaired). Public defaults: least-squares GAN loss, cycle weight 10, identity weight
    0.5 x 10, Adam 2e-4 with betas (0.5, 0.999), a pool of 50 past fakes, instance norm,
    N(0, 0.02) init, batch 1, constant learning rate for the first half of the run then a linear
    decay to zero. Generation runs the A -> B generator on ``c(source)``; it adds no noise, so
    the seed matters only for the ``masked`` condition. The default condition follows the
    channel count: ``channel:2`` from three channels on, else ``grayscale`` (on one channel, the
    source images themselves are domain A).

    Args:
        image_size: side of the square images (a multiple of 4).
        channels: channels of both domains.
        condition: condition spec defining domain A.
        ngf: generator width (64 in the public code).
        ndf: discriminator width (64 in the public code).
        n_blocks: residual blocks (``None``: :func:`scaled_architecture`).
        n_layers_d: discriminator stride-2 layers (``None``: :func:`scaled_architecture`).
        lambda_cycle: cycle-consistency weight.
        lambda_identity: identity weight, relative to ``lambda_cycle``.
        pool_size: past fakes kept for the discriminators.
        seed: seeds the initialisation and all training randomness.
        **training: the :class:`~generators.training.TrainingSettings` keywords (``batch_size``,
            1 here as in the public code, ``lr``, 2e-4 here, ``flip``, ``min_train_images``).
    """

    method = "cyclegan"
    fit_sources = "source-domain"
    default_source = "pool"
    training_defaults = TrainingSettings(batch_size=1, lr=2e-4)

    def __init__(
        self,
        image_size: int = 64,
        channels: int = 3,
        *,
        condition: str = "channel:2",
        ngf: int = 64,
        ndf: int = 64,
        n_blocks: int | None = None,
        n_layers_d: int | None = None,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        seed: int = 0,
        **training: Any,
    ) -> None:
        super().__init__(image_size, channels, condition=condition, seed=seed, **training)
        self.ngf = ngf
        self.ndf = ndf
        self.n_blocks = n_blocks
        self.n_layers_d = n_layers_d
        self.lambda_cycle = lambda_cycle
        self.lambda_identity = lambda_identity
        self.pool_size = pool_size

    @classmethod
    def default_condition(cls, channels: int) -> str:
        return "channel:2" if channels >= 3 else "grayscale"

    def check_params(self) -> None:
        super().check_params()
        if int(self.image_size) % 4:
            raise InputError(f"cyclegan needs an image size divisible by 4, got {self.image_size}")
        for name in ("ngf", "ndf"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")

    def _architecture(self) -> dict[str, int]:
        arch = scaled_architecture(int(self.image_size))
        if self.n_blocks is not None:
            arch["n_blocks"] = int(self.n_blocks)
        if self.n_layers_d is not None:
            arch["n_layers_d"] = int(self.n_layers_d)
        return arch

    def _make_generator(self) -> Any:
        from generators.cyclegan.networks import ResnetGenerator, init_weights

        arch = self._architecture()
        net = ResnetGenerator(self.channels, self.channels, self.ngf, arch["n_blocks"])
        init_weights(net)
        return net

    # -- training -----------------------------------------------------------------------------
    def _build(self, total_steps: int) -> None:
        import itertools

        import torch

        from generators.cyclegan.networks import ImagePool, PatchDiscriminator, init_weights

        arch = self._architecture()
        self.g_ab_, self.g_ba_ = self._make_generator(), self._make_generator()
        self.d_b_ = PatchDiscriminator(self.channels, self.ndf, arch["n_layers_d"])
        self.d_a_ = PatchDiscriminator(self.channels, self.ndf, arch["n_layers_d"])
        init_weights(self.d_a_)
        init_weights(self.d_b_)
        betas = (0.5, 0.999)
        self.opt_g_ = torch.optim.Adam(
            itertools.chain(self.g_ab_.parameters(), self.g_ba_.parameters()), self.lr, betas=betas
        )
        self.opt_d_ = torch.optim.Adam(
            itertools.chain(self.d_a_.parameters(), self.d_b_.parameters()), self.lr, betas=betas
        )
        half = total_steps // 2

        def linear_decay(step: int) -> float:
            # constant for the first half, then linearly to 0 (the public 'linear' policy)
            return 1.0 - max(0, step - half) / float(total_steps - half + 1)

        self.nets_ = {"g_ab": self.g_ab_, "g_ba": self.g_ba_, "d_a": self.d_a_, "d_b": self.d_b_}
        self.optimizers_ = {"g": self.opt_g_, "d": self.opt_d_}
        self.lr_schedulers_ = {
            name: torch.optim.lr_scheduler.LambdaLR(opt, linear_decay)
            for name, opt in self.optimizers_.items()
        }
        self.pool_a_, self.pool_b_ = ImagePool(self.pool_size), ImagePool(self.pool_size)

    def _draw(self, images: np.ndarray, condition: bool) -> Any:
        batch, _ = draw_batch(images, self.rng_, self.batch_size, flip=self.flip)
        if condition:
            batch = self.checked_condition()(batch, self.rng_)
        return nhwc_to_tensor(batch, self._device())

    def _train_step(self, data: TrainingData, total_steps: int) -> float:
        import torch
        import torch.nn.functional as F

        real_a = self._draw(data.sources if data.sources is not None else data.targets, True)
        real_b = self._draw(data.targets, False)
        lam_idt = self.lambda_cycle * self.lambda_identity
        # generators: adversarial (LSGAN), cycle and identity losses; discriminators frozen
        for d in (self.d_a_, self.d_b_):
            d.requires_grad_(False)
        fake_b, fake_a = self.g_ab_(real_a), self.g_ba_(real_b)
        rec_a, rec_b = self.g_ba_(fake_b), self.g_ab_(fake_a)
        pred_fb, pred_fa = self.d_b_(fake_b), self.d_a_(fake_a)
        loss_g = (
            F.mse_loss(pred_fb, torch.ones_like(pred_fb))
            + F.mse_loss(pred_fa, torch.ones_like(pred_fa))
            + self.lambda_cycle * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))
        )
        if lam_idt > 0:
            loss_g = loss_g + lam_idt * (
                F.l1_loss(self.g_ab_(real_b), real_b) + F.l1_loss(self.g_ba_(real_a), real_a)
            )
        self.opt_g_.zero_grad(set_to_none=True)
        loss_g.backward()
        self._step(self.opt_g_)
        # discriminators: real -> 1, pooled fake -> 0, halved
        for d in (self.d_a_, self.d_b_):
            d.requires_grad_(True)
        loss_d = 0.0
        for d, real, fake, pool in (
            (self.d_b_, real_b, fake_b, self.pool_b_),
            (self.d_a_, real_a, fake_a, self.pool_a_),
        ):
            pred_real, pred_fake = d(real), d(pool.query(fake, self.rng_))
            loss_d = loss_d + 0.5 * (
                F.mse_loss(pred_real, torch.ones_like(pred_real))
                + F.mse_loss(pred_fake, torch.zeros_like(pred_fake))
            )
        self.opt_d_.zero_grad(set_to_none=True)
        loss_d.backward()
        self._step(self.opt_d_)
        for scheduler in self.lr_schedulers_.values():
            scheduler.step()
        return float(loss_g.detach())

    def _extra_state(self) -> dict[str, Any]:
        return {"pool_a": self.pool_a_.state(), "pool_b": self.pool_b_.state()}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_a_.load(state["pool_a"].to(self._device()))
        self.pool_b_.load(state["pool_b"].to(self._device()))

    # -- weights and generation ---------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        return module_weights(self.g_ab_)

    def _set_weights(self, weights) -> None:
        self.g_ab_ = self._make_generator()
        load_module_weights(self.g_ab_, dict(weights))
        self.g_ab_.to(self._device())

    def _default_batch_size(self) -> int:
        return 16

    def _generate(self, sources, seeds, masks, steps) -> np.ndarray:
        import torch

        y = self._condition_sources(sources, seeds, masks)
        self.g_ab_.eval()
        with torch.no_grad():
            out = in_fixed_chunks(self.g_ab_, nhwc_to_tensor(y, self._device()))
        return from_float(tensor_to_nhwc(out))
