"""CycleGAN and the masked DDPM: short real trainings, generation, resume, save/load, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brain.errors import InputError
from generators import Generator
from generators.cyclegan import CycleGANGenerator, scaled_architecture
from generators.cyclegan.networks import PatchDiscriminator
from generators.masked_ddpm import MaskedDDPMGenerator

SIZE = 16


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blobs(n: int, seed: int, colour: int) -> np.ndarray:
    """Images with one bright square blob in channel ``colour``."""
    rng = np.random.default_rng(seed)
    images = np.full((n, SIZE, SIZE, 3), 10, np.uint8)
    for i in range(n):
        top, left = rng.integers(2, SIZE - 8, 2)
        images[i, top : top + 6, left : left + 6, colour] = 230
        images[i, top : top + 6, left : left + 6, 2] = 200
    return images


def small_cyclegan(**params) -> CycleGANGenerator:
    return CycleGANGenerator(SIZE, 3, **({"ngf": 8, "ndf": 8, "n_blocks": 2} | params))


def test_architecture_scales_with_size():
    assert scaled_architecture(256) == {"n_blocks": 9, "n_layers_d": 3}
    assert scaled_architecture(128) == {"n_blocks": 6, "n_layers_d": 3}
    assert scaled_architecture(64) == {"n_blocks": 6, "n_layers_d": 2}
    patches = PatchDiscriminator(3, 8, 3)(torch.zeros(1, 3, 128, 128))
    assert patches.shape == (1, 1, 14, 14)  # the 70x70 PatchGAN on 128 px


def test_cyclegan_trains_generates_and_resumes(tmp_path):
    rare, pool = blobs(10, 0, colour=0), blobs(10, 1, colour=1)
    straight = small_cyclegan().fit(rare, pool, steps=30, progress=False)
    losses = straight.loss_history_
    assert len(losses) == 30 and np.mean(losses[-5:]) < np.mean(losses[:5])
    out = straight.generate(pool[:3], [0, 1, 2])
    assert out.shape == (3, SIZE, SIZE, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(straight.generate(pool[2:3], [2]), out[2:3])

    def stop(step, loss):
        if step == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        small_cyclegan().fit(
            rare,
            pool,
            steps=30,
            checkpoint_dir=tmp_path,
            checkpoint_every=10,
            callback=stop,
            progress=False,
        )
    resumed = small_cyclegan().fit(rare, pool, steps=30, checkpoint_dir=tmp_path, resume=True)
    assert resumed.loss_history_ == losses  # the image pools and lr decay resume too
    assert resumed.checkpoint_digest == straight.checkpoint_digest
    loaded = Generator.load(tmp_path)
    np.testing.assert_array_equal(loaded.generate(pool[:3], [0, 1, 2]), out)


def test_cyclegan_bad_input():
    with pytest.raises(InputError, match="at least 2 rare-class images to train, got 1"):
        small_cyclegan().fit(blobs(1, 0, 0), blobs(8, 1, 1))
    with pytest.raises(InputError, match="source images are 32x32"):
        small_cyclegan().fit(blobs(8, 0, 0), np.zeros((8, 32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="divisible by 4"):
        CycleGANGenerator(18, 3).fit(np.zeros((8, 18, 18, 3), np.uint8))


def test_masked_ddpm_inpaints_only_the_region(tmp_path):
    rare, normal = blobs(10, 0, colour=0), blobs(4, 1, colour=1)
    generator = MaskedDDPMGenerator(
        SIZE,
        3,
        preset="tiny",
        num_timesteps=50,
        sampling_steps=10,
        jump_length=3,
        jump_n_sample=2,
        batch_size=4,
        lr=1e-3,
    ).fit(rare, steps=30, progress=False)
    losses = generator.loss_history_
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    masks = np.zeros((2, SIZE, SIZE), bool)
    masks[:, 4:12, 4:12] = True
    out = generator.generate(normal[:2], [0, 1], masks=masks)
    assert out.shape == (2, SIZE, SIZE, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~masks], normal[:2][~masks])  # kept outside the mask
    assert not np.array_equal(out[masks], normal[:2][masks])
    np.testing.assert_array_equal(generator.generate(normal[1:2], [1], masks=masks[1:]), out[1:])
    boxes = generator.generate(normal[:1], [3])  # a random box from the seed
    assert (boxes != normal[:1]).any()
    generator.save(tmp_path)
    assert Generator.load(tmp_path).checkpoint_digest == generator.checkpoint_digest
    with pytest.raises(InputError, match="masks are 8x8"):
        generator.generate(normal[:1], [0], masks=np.ones((1, 8, 8)))
    with pytest.raises(InputError, match="'masked' condition"):
        MaskedDDPMGenerator(SIZE, 3, condition="channel:2", preset="tiny").fit(rare)
    with pytest.raises(InputError, match="masks are for generation"):
        MaskedDDPMGenerator(SIZE, 3, preset="tiny").fit(rare, masks=np.ones((10, SIZE, SIZE)))
