"""BBDM speed at 64x64 on CPU against bare ``UNet2DModel`` calls of the same shapes, same run.

Training: one step of ``BBDMGenerator.fit`` (batch 8: batch drawing, flips, condition, bridge
noise and target, UNet forward + L1 backward, Adam, ReduceLROnPlateau, EMA, loop bookkeeping)
against one bare step (UNet forward + L1 backward + Adam on fixed random tensors of the same
shapes). The two are interleaved step by step: the fit callback runs a bare step after each of
ours, and our step time runs from the end of one callback to the start of the next.
Sampling: ``BBDMGenerator.generate`` of 8 images (condition, per-image generators, the bridge
scheduler and pipeline) against the same number of bare UNet forward calls (no grad), alternated
(which side runs first alternates too).
Overhead = median over pairs of (our time / bare time) - 1: pairing cancels the load of other
processes on a shared machine. Target: <= 10%.

    .venv/bin/python bench/bench_generators.py [--threads 1] [--train-steps 30] [--sample-steps 10]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from generators.bbdm import BBDMGenerator
from generators.bbdm.model import make_unet

SIZE, CHANNELS, BATCH = 64, 3, 8


def fake_crops(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, SIZE, SIZE, CHANNELS), dtype=np.uint8)


class BareStep:
    """UNet forward + L1 backward + Adam on fixed random tensors of the training shapes."""

    def __init__(self, preset: str) -> None:
        torch.manual_seed(0)
        self.unet = make_unet(preset, SIZE, 2 * CHANNELS, CHANNELS)
        self.optimizer = torch.optim.Adam(self.unet.parameters(), lr=1e-4)
        self.x = torch.randn(BATCH, 2 * CHANNELS, SIZE, SIZE)
        self.target = torch.randn(BATCH, CHANNELS, SIZE, SIZE)
        self.t = torch.randint(0, 1000, (BATCH,))

    def __call__(self) -> None:
        loss = (self.unet(self.x, self.t).sample - self.target).abs().mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def training_times(steps: int, warmup: int, preset: str) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per step, ours and bare, interleaved step by step."""
    bare = BareStep(preset)
    ours_times: list[float] = []
    bare_times: list[float] = []
    last = [time.perf_counter()]

    def callback(step: int, loss: float) -> None:
        entered = time.perf_counter()
        ours_times.append(entered - last[0])
        bare()
        left = time.perf_counter()
        bare_times.append(left - entered)
        last[0] = left

    generator = BBDMGenerator(SIZE, CHANNELS, preset=preset, batch_size=BATCH)
    generator.fit(fake_crops(64), steps=warmup + steps, progress=False, callback=callback)
    return np.array(ours_times[warmup:]), np.array(bare_times[warmup:])


def sampling_times(preset: str, n: int, steps: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds to sample ``n`` images with ``steps`` steps, ours and bare, alternated."""
    generator = BBDMGenerator(SIZE, CHANNELS, preset=preset, batch_size=BATCH)
    generator.fit(fake_crops(16), steps=1, progress=False)
    unet = generator.ema_unet_
    sources = fake_crops(n, seed=1)
    x = torch.randn(n, 2 * CHANNELS, SIZE, SIZE)
    timesteps = np.linspace(999, 0, steps).astype(int)
    generator.generate(sources, list(range(n)), steps=3, batch_size=n)  # warm-up

    def run_ours() -> float:
        start = time.perf_counter()
        generator.generate(sources, list(range(n)), steps=steps, batch_size=n)
        return time.perf_counter() - start

    def run_bare() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            for t in timesteps:
                unet(x, torch.full((n,), int(t), dtype=torch.long))
        return time.perf_counter() - start

    ours, bare = [], []
    for repeat in range(repeats):  # alternate which side goes first
        if repeat % 2:
            ours.append(run_ours())
            bare.append(run_bare())
        else:
            bare.append(run_bare())
            ours.append(run_ours())
    return np.array(ours), np.array(bare)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--train-steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--sample-steps", type=int, default=10)
    parser.add_argument("--sample-images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=7, help="sampling repeats")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    unet_params = sum(p.numel() for p in make_unet(args.preset, SIZE, 6, 3).parameters())
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), preset {args.preset} "
        f"({unet_params / 1e6:.2f}M parameters), {SIZE}x{SIZE}x{CHANNELS}, batch {BATCH}"
    )
    ours, bare = training_times(args.train_steps, args.warmup, args.preset)
    overhead = float(np.median(ours / bare)) - 1
    print(
        f"training ({len(ours)} paired steps): ours {1 / np.median(ours):.3f} steps/s "
        f"({np.median(ours):.2f} s/step), bare UNet fwd+bwd+Adam {1 / np.median(bare):.3f} "
        f"steps/s -> overhead {overhead:+.1%}"
    )
    n = args.sample_images
    ours, bare = sampling_times(args.preset, n, args.sample_steps, args.repeats)
    overhead = float(np.median(ours / bare)) - 1
    print(
        f"sampling ({args.repeats} paired runs of {n} images x {args.sample_steps} steps): "
        f"ours {n / np.median(ours):.3f} images/s, bare UNet forward {n / np.median(bare):.3f} "
        f"images/s -> overhead {overhead:+.1%}"
    )


if __name__ == "__main__":
    main()
