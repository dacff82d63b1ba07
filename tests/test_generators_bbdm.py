"""BBDM: the bridge scheduler against METHOD.md, short real trainings, resume, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brain.errors import InputError
from generators import GENERATORS, Generator
from generators.bbdm import BBDMGenerator, scaled_schedule
from generators.bbdm.model import make_unet
from generators.bbdm.scheduler import BrownianBridgeScheduler, skip_timesteps
from generators.cyclegan import CycleGANGenerator

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fish_like(n: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """FISH-like crops: a DAPI blob (blue), painted red on its left half and green on its right."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        r = rng.uniform(size * 0.15, size * 0.3)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2) * rng.uniform(150, 255)
        images[i, ..., 2] = blob
        images[i, ..., 0] = blob * (xx < cx)
        images[i, ..., 1] = blob * (xx >= cx)
    return images


def tiny(**params) -> BBDMGenerator:
    defaults = {"preset": "tiny", "num_timesteps": 100, "sampling_steps": 5, "batch_size": 4}
    return BBDMGenerator(SIZE, 3, **(defaults | params))


@pytest.fixture(scope="module")
def fitted() -> BBDMGenerator:
    return tiny(lr=1e-3).fit(fish_like(16), steps=40, progress=False)


# -- scheduler ----------------------------------------------------------------------------------
def test_schedule_matches_method():
    scheduler = BrownianBridgeScheduler()
    m, d = scheduler.m_t, scheduler.variance_t
    assert len(m) == 1000 and m[0] == pytest.approx(0.001) and m[-1] == pytest.approx(0.999)
    assert torch.allclose(d, 2 * (m - m**2))
    steps = skip_timesteps(1000, 200)
    assert len(steps) == 200 and steps[0] == 999 and steps[-2:].tolist() == [1, 0]
    assert (steps[:-1] > steps[1:]).all()
    with pytest.raises(ValueError):
        scheduler.set_timesteps(2)


def test_bridge_endpoints_and_target():
    scheduler = BrownianBridgeScheduler()
    gen = torch.Generator().manual_seed(0)
    x0, y = torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1, torch.rand(2, 3, 8, 8, generator=gen)
    noise = torch.randn(2, 3, 8, 8, generator=gen)
    last, first = torch.full((2,), 999), torch.zeros(2, dtype=torch.long)
    # x_T = y up to noise of std sqrt(d_{T-1}) ~ 0.045; x_0 = x0 up to the same
    assert (scheduler.add_noise(x0, y, noise, last) - y).abs().mean() < 0.06
    assert (scheduler.add_noise(x0, y, noise, first) - x0).abs().mean() < 0.06
    assert torch.allclose(
        scheduler.add_noise(x0, y, torch.zeros_like(noise), last), 0.001 * x0 + 0.999 * y
    )
    t = torch.tensor([10, 700])
    x_t = scheduler.add_noise(x0, y, noise, t)
    assert torch.allclose(scheduler.training_target(x0, y, noise, t), x_t - x0, atol=1e-6)


def test_one_step_matches_formula():
    scheduler = BrownianBridgeScheduler()
    scheduler.set_timesteps(10)
    t, n = int(scheduler.timesteps[3]), int(scheduler.timesteps[4])
    gen = torch.Generator().manual_seed(1)
    x_t, y, out = (torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    result = scheduler.step(out, t, x_t, y, generator=torch.Generator().manual_seed(5))
    z = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    m = np.linspace(0.001, 0.999, 1000)
    d = 2 * (m - m**2)
    x0 = (x_t - out).clamp(-1, 1)
    s2 = (d[t] - d[n] * (1 - m[t]) ** 2 / (1 - m[n]) ** 2) * d[n] / d[t]
    expected = (
        (1 - m[n]) * x0
        + m[n] * y
        + np.sqrt((d[n] - s2) / d[t]) * (x_t - (1 - m[t]) * x0 - m[t] * y)
        + np.sqrt(s2) * z
    )
    assert torch.allclose(result.pred_original_sample, x0)
    assert torch.allclose(result.prev_sample, expected, atol=1e-10)
    final = scheduler.step(out, 0, x_t, y)
    assert torch.equal(final.prev_sample, x0)


def test_cpu_preset_size():
    params = sum(p.numel() for p in make_unet("cpu", 64, 6, 3).parameters())
    assert 1e6 <= params <= 3e6


def test_scaled_schedule():
    assert scaled_schedule(200_000) == {"patience": 3000, "ema_start": 30_000, "ema_every": 16}
    assert scaled_schedule(1000) == {"patience": 50, "ema_start": 200, "ema_every": 1}


# -- training and generation --------------------------------------------------------------------
def test_loss_falls(fitted):
    losses = fitted.loss_history_
    assert len(losses) == 40
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])


def test_generate_shapes_ranges_and_determinism(fitted):
    sources = fish_like(3, seed=7)
    out = fitted.generate(sources, [1, 2, 3])
    assert out.shape == (3, SIZE, SIZE, 3) and out.dtype == np.uint8
    assert out.std() > 0
    again = fitted.generate(sources[2:], [3], batch_size=1)
    np.testing.assert_array_equal(again[0], out[2])  # per (source, seed), whatever the batch
    other_seed = fitted.generate(sources[2:], [4])
    assert not np.array_equal(other_seed[0], out[2])


def test_registry_and_params():
    assert "bbdm" in GENERATORS.names()
    assert GENERATORS.get("bbdm") is BBDMGenerator
    params = tiny().get_params()
    assert params["preset"] == "tiny" and params["condition"] == "channel:2"
    with pytest.raises(InputError, match="known"):
        GENERATORS.get("nope")


def test_save_load_roundtrip(fitted, tmp_path):
    fitted.save(tmp_path / "g")
    loaded = Generator.load(tmp_path / "g")
    assert isinstance(loaded, BBDMGenerator)
    assert loaded.checkpoint_digest == fitted.checkpoint_digest
    assert loaded.loss_history_ == pytest.approx(fitted.loss_history_)
    sources = fish_like(2, seed=3)
    np.testing.assert_array_equal(
        loaded.generate(sources, [0, 1]), fitted.generate(sources, [0, 1])
    )
    with pytest.raises(InputError, match="method 'bbdm'"):
        CycleGANGenerator.load(tmp_path / "g")
    with pytest.raises(InputError, match="image_size"):
        BBDMGenerator.load(tmp_path / "g", image_size=32)
    with pytest.raises(InputError, match="no saved generator"):
        Generator.load(tmp_path / "missing")


def test_resume_continues_exactly(tmp_path):
    data = fish_like(12, seed=2)
    straight = tiny().fit(data, steps=12, progress=False)

    class Killed(Exception):
        pass

    def kill_at_6(step, loss):
        if step == 6:
            raise Killed

    with pytest.raises(Killed):
        tiny().fit(
            data,
            steps=12,
            checkpoint_dir=tmp_path,
            checkpoint_every=3,
            callback=kill_at_6,
            progress=False,
        )
    resumed = tiny().fit(data, steps=12, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed.loss_history_ == straight.loss_history_
    assert resumed.checkpoint_digest == straight.checkpoint_digest
    for a, b in zip(resumed.unet_.parameters(), straight.unet_.parameters(), strict=True):
        assert torch.equal(a, b)
    # the checkpoint folder is a loadable generator
    assert Generator.load(tmp_path).checkpoint_digest == straight.checkpoint_digest


def test_resume_refuses_other_params_or_data(tmp_path):
    data = fish_like(8, seed=2)
    tiny().fit(data, steps=2, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(InputError, match="parameters differ"):
        tiny(lr=5e-4).fit(data, steps=4, checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(InputError, match="other images"):
        tiny().fit(
            fish_like(8, seed=3), steps=4, checkpoint_dir=tmp_path, resume=True, progress=False
        )
    with pytest.raises(InputError, match="not 'cyclegan'"):
        CycleGANGenerator(SIZE, 3, ngf=4, ndf=4).fit(
            data, steps=1, checkpoint_dir=tmp_path, progress=False
        )
    with pytest.raises(InputError, match="32px"):
        BBDMGenerator(32, 3, preset="tiny").fit(
            fish_like(8, 32), steps=1, checkpoint_dir=tmp_path, progress=False
        )


# -- bad input ----------------------------------------------------------------------------------
def test_bad_inputs_write_nothing(fitted, tmp_path):
    out = tmp_path / "ckpt"
    # the minimum is a parameter (default 2, never below 2), no longer a wall of 8 images
    with pytest.raises(InputError, match="at least 2 rare-class images to train, got 1"):
        tiny().fit(fish_like(1), checkpoint_dir=out, progress=False)
    with pytest.raises(InputError, match="at least 4 rare-class images to train, got 3"):
        tiny(min_train_images=4).fit(fish_like(3), checkpoint_dir=out, progress=False)
    with pytest.raises(InputError, match="min_train_images must be at least 2, got 1"):
        tiny(min_train_images=1).fit(fish_like(3), checkpoint_dir=out, progress=False)
    with pytest.raises(InputError, match="channel index 5 is out of range"):
        tiny(condition="channel:5").fit(fish_like(8), checkpoint_dir=out, progress=False)
    with pytest.raises(InputError, match="masks are 8x8"):
        tiny(condition="masked").fit(fish_like(8), masks=np.ones((8, 8, 8)), checkpoint_dir=out)
    with pytest.raises(InputError, match="channels"):
        tiny().fit(fish_like(8)[..., :2], checkpoint_dir=out)
    with pytest.raises(InputError, match="divisible"):
        BBDMGenerator(18, 3, preset="cpu").fit(
            np.zeros((8, 18, 18, 3), np.uint8), checkpoint_dir=out
        )
    assert not out.exists()
    with pytest.raises(InputError, match="empty"):
        fitted.generate(np.zeros((0, SIZE, SIZE, 3), np.uint8), [])
    with pytest.raises(InputError, match="32x32"):
        fitted.generate(fish_like(1, 32), [0])
    with pytest.raises(InputError, match="channels"):
        fitted.generate(fish_like(1)[..., :1], [0])
    with pytest.raises(InputError, match="one seed per source"):
        fitted.generate(fish_like(2), [0])
    with pytest.raises(InputError, match="does not use masks"):
        fitted.generate(fish_like(1), [0], masks=np.ones((1, SIZE, SIZE)))


def test_masked_condition_trains_and_respects_masks():
    data = fish_like(8, seed=4)
    generator = tiny(condition="masked").fit(data, steps=3, progress=False)
    with pytest.raises(InputError, match="masks are 4x4"):
        generator.generate(data[:1], [0], masks=np.ones((1, 4, 4)))
    out = generator.generate(data[:2], [0, 1], masks=np.ones((2, SIZE, SIZE)))
    assert out.shape == (2, SIZE, SIZE, 3)
