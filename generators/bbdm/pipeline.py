"""BBDM sampling: the visible loop that walks the bridge from ``y`` back to an image."""

from __future__ import annotations

import torch

from generators.bbdm.scheduler import BrownianBridgeScheduler
from generators.tensors import in_fixed_chunks


class BBDMPipeline:
    """Wires a denoiser and a :class:`BrownianBridgeScheduler`; ``__call__`` runs the loop.

    The denoiser runs on chunks of a fixed number of images (``in_fixed_chunks``), so each image
    is the same whatever else is in the batch.

    Args:
        unet: a ``UNet2DModel`` with ``in_channels = 2 C``, ``out_channels = C``.
        scheduler: the bridge scheduler it was trained with.
    """

    def __init__(self, unet: torch.nn.Module, scheduler: BrownianBridgeScheduler) -> None:
        self.unet = unet
        self.scheduler = scheduler

    @torch.no_grad()
    def __call__(
        self,
        condition: torch.Tensor,
        *,
        num_inference_steps: int = 200,
        generator: torch.Generator | list[torch.Generator] | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """Translate ``condition`` (``y``, ``(N, C, H, W)`` in ``[-1, 1]``) to images ``x0_hat``.

        Args:
            condition: the condition images ``y``.
            num_inference_steps: timesteps visited (``>= 3``).
            generator: one torch generator, or one per image for per-image determinism.
            progress: show a progress bar over the steps.

        Returns:
            ``(N, C, H, W)`` images in ``[-1, 1]``.
        """
        from brain.progress import progress_bar

        self.scheduler.set_timesteps(num_inference_steps)
        sample = condition.clone()  # x_T = y: sampling starts at the condition, no added noise
        batch = condition.shape[0]
        steps = progress_bar(self.scheduler.timesteps, desc="sample", unit="step", enabled=progress)
        for t in steps:
            t_batch = torch.full((batch,), int(t), dtype=torch.long, device=condition.device)
            model_output = in_fixed_chunks(
                self._denoise, torch.cat([sample, condition], dim=1), t_batch
            )
            sample = self.scheduler.step(
                model_output, t, sample, condition, generator=generator
            ).prev_sample
        return sample

    def _denoise(self, model_input: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.unet(model_input, timesteps).sample
