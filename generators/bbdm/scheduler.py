"""The Brownian-bridge scheduler of BBDM (Li et al., CVPR 2023), as its public code computes it.

Notation (METHOD.md, "BBDM, as its public implementation computes it"):

- ``T`` training steps, ``m_t = linspace(m_min, m_max, T)`` (0.001 .. 0.999);
- variance ``d_t = 2 s (m_t - m_t^2)`` with ``s = max_var`` (1);
- ``x0`` is the target image, ``y`` the condition image, both in ``[-1, 1]`` and of one shape.

Forward (eq. F): ``x_t = (1 - m_t) x0 + m_t y + sqrt(d_t) eps``.
Training target, objective "grad" (eq. G): ``m_t (y - x0) + sqrt(d_t) eps`` (= ``x_t - x0``).
Predicted start (eq. P): ``x0_hat = x_t - model_output``, clamped to ``[-1, 1]``.
Reverse step from ``t`` to the next sampled step ``n`` (eq. R)::

    s2  = (d_t - d_n (1 - m_t)^2 / (1 - m_n)^2) * d_n / d_t
    x_n = (1 - m_n) x0_hat + m_n y + sqrt((d_n - s2) / d_t) (x_t - (1 - m_t) x0_hat - m_t y)
          + eta sqrt(s2) z

and at ``t = 0`` the step returns ``x0_hat``. Sampling starts at ``x = y`` with no added noise.
diffusers has no Brownian-bridge scheduler; this one follows its scheduler layout (config in
``__init__``, ``set_timesteps``, ``add_noise``, ``step`` returning an output dataclass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BrownianBridgeSchedulerOutput:
    """Output of :meth:`BrownianBridgeScheduler.step`.

    Attributes:
        prev_sample: ``x_n``, the sample at the next (smaller) timestep; ``x0_hat`` at ``t = 0``.
        pred_original_sample: ``x0_hat``, the predicted target image.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


def bridge_schedule(
    num_train_timesteps: int, m_min: float, m_max: float, max_var: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(m_t, d_t)`` in float64: the bridge's mixing weights and variances."""
    m_t = torch.linspace(m_min, m_max, num_train_timesteps, dtype=torch.float64)
    variance_t = 2.0 * max_var * (m_t - m_t**2)
    return m_t, variance_t


def skip_timesteps(num_train_timesteps: int, num_inference_steps: int) -> torch.Tensor:
    """The decreasing timesteps sampling visits: linearly spaced from ``T - 1``, ending 1, 0.

    As the public code: ``arange(T - 1, 1, -(T - 1) / (S - 2)).long()`` followed by ``[1, 0]``
    (duplicates from the truncation, possible only for ``S`` close to ``T``, are dropped).
    """
    T, S = num_train_timesteps, num_inference_steps
    if S >= T:
        return torch.arange(T - 1, -1, -1, dtype=torch.long)
    mid = torch.arange(T - 1, 1, -((T - 1) / (S - 2)), dtype=torch.float64).long()
    steps = torch.cat([mid, torch.tensor([1, 0], dtype=torch.long)])
    return torch.unique_consecutive(steps)


def _per_sample(values: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[timesteps]`` shaped to broadcast over ``like`` (N, C, H, W), in its dtype."""
    picked = values.to(like.device)[timesteps.to(like.device).long()]
    return picked.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


class BrownianBridgeScheduler:
    """Brownian-bridge noise schedule, training target and skip-step sampler.

    Args:
        num_train_timesteps: ``T``.
        m_min: ``m_0``.
        m_max: ``m_{T-1}``.
        max_var: ``s`` in ``d_t = 2 s (m_t - m_t^2)``.
        eta: scale of the noise added at each reverse step (1 = the stochastic sampler).
        clip_sample: clamp ``x0_hat`` to ``[-1, 1]``.
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        m_min: float = 0.001,
        m_max: float = 0.999,
        max_var: float = 1.0,
        eta: float = 1.0,
        clip_sample: bool = True,
    ) -> None:
        if num_train_timesteps < 3:
            raise ValueError(f"num_train_timesteps must be at least 3, got {num_train_timesteps}")
        if not 0.0 < m_min < m_max < 1.0:
            raise ValueError(f"need 0 < m_min < m_max < 1, got {m_min}, {m_max}")
        self.config = {
            "num_train_timesteps": int(num_train_timesteps),
            "m_min": float(m_min),
            "m_max": float(m_max),
            "max_var": float(max_var),
            "eta": float(eta),
            "clip_sample": bool(clip_sample),
        }
        self.m_t, self.variance_t = bridge_schedule(num_train_timesteps, m_min, m_max, max_var)
        self.timesteps: torch.Tensor | None = None
        self.num_inference_steps: int | None = None

    @property
    def num_train_timesteps(self) -> int:
        return self.config["num_train_timesteps"]

    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the sampling timesteps (``3 <= S``; ``S >= T`` visits every step)."""
        if num_inference_steps < 3:
            raise ValueError(f"num_inference_steps must be at least 3, got {num_inference_steps}")
        self.timesteps = skip_timesteps(self.num_train_timesteps, num_inference_steps)
        self.num_inference_steps = len(self.timesteps)

    # -- training -----------------------------------------------------------------------------
    def add_noise(
        self,
        original_samples: torch.Tensor,
        condition: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """Eq. F: ``x_t = (1 - m_t) x0 + m_t y + sqrt(d_t) eps``."""
        m_t, sigma_t = self._coefficients(timesteps, original_samples)
        return (1.0 - m_t) * original_samples + m_t * condition + sigma_t * noise

    def training_target(
        self,
        original_samples: torch.Tensor,
        condition: torch.Tensor,
        noise: torch.Tensor,
        timesteps: torch.Tensor,
    ) -> torch.Tensor:
        """Eq. G, objective "grad": ``m_t (y - x0) + sqrt(d_t) eps``."""
        m_t, sigma_t = self._coefficients(timesteps, original_samples)
        return m_t * (condition - original_samples) + sigma_t * noise

    def _coefficients(
        self, timesteps: torch.Tensor, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(m_t, sqrt(d_t))`` per sample, shaped to broadcast over ``like``."""
        m_t = _per_sample(self.m_t, timesteps, like)
        return m_t, _per_sample(self.variance_t.sqrt(), timesteps, like)

    def predict_original_sample(
        self, model_output: torch.Tensor, sample: torch.Tensor
    ) -> torch.Tensor:
        """Eq. P: ``x0_hat = x_t - model_output`` (clamped to ``[-1, 1]`` if ``clip_sample``)."""
        x0_hat = sample - model_output
        return x0_hat.clamp(-1.0, 1.0) if self.config["clip_sample"] else x0_hat

    # -- sampling -----------------------------------------------------------------------------
    def next_timestep(self, timestep: int) -> int | None:
        """The timestep after ``timestep`` in the sampling schedule (``None`` after 0)."""
        if self.timesteps is None:
            raise RuntimeError("call set_timesteps before step")
        matches = (self.timesteps == int(timestep)).nonzero()
        if len(matches) == 0:
            raise ValueError(f"timestep {int(timestep)} is not in the sampling schedule")
        index = int(matches[0, 0])
        return None if index + 1 >= len(self.timesteps) else int(self.timesteps[index + 1])

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.Tensor,
        condition: torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> BrownianBridgeSchedulerOutput:
        """One reverse step, eq. R, from ``timestep`` to the next timestep of the schedule.

        Args:
            model_output: the network's "grad" prediction at ``(x_t, y, t)``.
            timestep: ``t``, a timestep of the schedule.
            sample: ``x_t``.
            condition: ``y``.
            generator: one generator, or one per sample (independent noise per sample).
        """
        t = int(timestep)
        x0_hat = self.predict_original_sample(model_output, sample)
        n = self.next_timestep(t)
        if t == 0 or n is None:
            return BrownianBridgeSchedulerOutput(prev_sample=x0_hat, pred_original_sample=x0_hat)
        m_t, m_n = float(self.m_t[t]), float(self.m_t[n])
        d_t, d_n = float(self.variance_t[t]), float(self.variance_t[n])
        # s2 = (d_t - d_n (1 - m_t)^2 / (1 - m_n)^2) * d_n / d_t
        s2 = (d_t - d_n * (1.0 - m_t) ** 2 / (1.0 - m_n) ** 2) * d_n / d_t
        s2 = max(s2, 0.0)
        # mean of x_n:
        #   (1 - m_n) x0_hat + m_n y + sqrt((d_n - s2) / d_t) (x_t - (1 - m_t) x0_hat - m_t y)
        mean = (
            (1.0 - m_n) * x0_hat
            + m_n * condition
            + ((d_n - s2) / d_t) ** 0.5 * (sample - (1.0 - m_t) * x0_hat - m_t * condition)
        )
        eta = self.config["eta"]
        if eta == 0.0 or s2 == 0.0:
            return BrownianBridgeSchedulerOutput(prev_sample=mean, pred_original_sample=x0_hat)
        noise = _randn_like(sample, generator)
        prev = mean + eta * s2**0.5 * noise
        return BrownianBridgeSchedulerOutput(prev_sample=prev, pred_original_sample=x0_hat)


def _randn_like(sample: torch.Tensor, generator) -> torch.Tensor:
    """Standard normal noise shaped like ``sample``; one generator per sample if a list."""
    if isinstance(generator, list):
        if len(generator) != sample.shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {sample.shape[0]}")
        return torch.stack(
            [
                torch.randn(sample.shape[1:], generator=g, dtype=sample.dtype).to(sample.device)
                for g in generator
            ]
        )
    return torch.randn(sample.shape, generator=generator, dtype=sample.dtype).to(sample.device)
