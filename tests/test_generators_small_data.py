"""Generators on the data users have: few rare images, one channel, no repeated outputs.

Array-level checks (no database): conditions chosen for the channel count, the minimum of
training images as a parameter, heavier augmentation below 8 images, interpolation without
duplicates, and generation that does not depend on what else is in the batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brain.errors import InputError
from generators import GENERATORS
from generators.arrays import to_float
from generators.batches import (
    FEW_TRAIN_IMAGES,
    draw_batch,
    few_images_warning,
    random_turns_and_shifts,
    shift_image,
)
from generators.bbdm import BBDMGenerator
from generators.classic import InterpolationGenerator
from generators.tensors import in_fixed_chunks

SIZE = 16

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gray_blobs(n: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """One-channel images: a dark blob on a light background (Giemsa-like)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.full((n, size, size, 1), 220, np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        radius = rng.uniform(size * 0.15, size * 0.3)
        images[i, (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2, 0] = rng.integers(20, 90)
    return images


# -- conditions chosen for the data -------------------------------------------------------------
def test_default_conditions_follow_channels_and_method():
    bbdm, cyclegan, masked = (GENERATORS.get(m) for m in ("bbdm", "cyclegan", "masked_ddpm"))
    assert bbdm.default_condition(3) == "channel:2" and bbdm.default_condition(1) == "blur:3"
    assert cyclegan.default_condition(3) == "channel:2"
    assert cyclegan.default_condition(1) == "grayscale"
    assert masked.default_condition(1) == masked.default_condition(3) == "masked"
    assert GENERATORS.get("interpolation").default_condition(1) == "grayscale"
    # every default is valid for its method and channel count
    for method in GENERATORS.names():
        cls = GENERATORS.get(method)
        for channels in (1, 3):
            generator = cls(SIZE, channels, condition=cls.default_condition(channels))
            generator.check_params()


def test_valid_conditions_and_the_error_that_lists_them():
    assert BBDMGenerator.valid_conditions(1) == ["blur:SIGMA", "masked"]
    assert BBDMGenerator.valid_conditions(3) == [
        "blur:SIGMA",
        "channel:0",
        "channel:1",
        "channel:2",
        "grayscale",
        "masked",
    ]
    assert GENERATORS.get("cyclegan").valid_conditions(1) == [
        "blur:SIGMA",
        "channel:0",
        "grayscale",
        "masked",
    ]
    assert GENERATORS.get("masked_ddpm").valid_conditions(3) == ["masked"]
    listed = "valid for bbdm on 1-channel images: blur:SIGMA, masked"
    for condition, problem in [
        ("channel:2", "channel index 2 is out of range for 1-channel images"),
        ("grayscale", "leaves 1-channel images unchanged"),
        ("channel:0", "leaves 1-channel images unchanged"),
        ("sepia", "unknown condition 'sepia'"),
    ]:
        with pytest.raises(InputError, match=problem) as error:
            BBDMGenerator(SIZE, 1, condition=condition, preset="tiny").fit(gray_blobs(4))
        assert listed in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(InputError, match=r"needs the 'masked' condition.*valid .*: masked$"):
        GENERATORS.get("masked_ddpm")(SIZE, 1, condition="blur:3").check_params()


# -- few training images ------------------------------------------------------------------------
def test_shift_and_turns_keep_shape_and_background():
    image = gray_blobs(1)[0]
    moved = shift_image(image, 2, -1)
    assert moved.shape == image.shape
    np.testing.assert_array_equal(moved[2:, :-1], image[:-2, 1:])
    assert (moved[:2] == 220).all()  # edge pixels repeated: no black frame
    batch = np.repeat(gray_blobs(1).astype(np.float32), 32, axis=0)
    masks = batch[..., 0] < 100
    out, out_masks = random_turns_and_shifts(batch, np.random.default_rng(0), masks)
    assert out.shape == batch.shape and out_masks.shape == masks.shape
    assert len({o.tobytes() for o in out}) > 4  # the draws differ
    np.testing.assert_array_equal(out_masks, out[..., 0] < 100)  # masks move with their images


def test_heavier_augmentation_below_eight_images_only():
    few = gray_blobs(FEW_TRAIN_IMAGES - 1)
    many = gray_blobs(FEW_TRAIN_IMAGES)

    def variants(images):
        batch, _ = draw_batch(
            images[:1].repeat(len(images), 0), np.random.default_rng(0), 64, flip=True
        )
        return len({b.tobytes() for b in batch})

    assert variants(few) > 4  # flips (4 at most) plus turns and shifts
    assert variants(many) <= 4  # flips only, as before
    batch, _ = draw_batch(few, np.random.default_rng(0), 8, flip=False)
    assert {b.tobytes() for b in batch} <= {i.tobytes() for i in to_float(few)}  # untouched
    assert few_images_warning("bbdm", 7, True).startswith("bbdm trains on only 7 rare-class")
    assert few_images_warning("bbdm", FEW_TRAIN_IMAGES, True) is None


def test_minimum_is_a_parameter_with_a_floor_of_two():
    two = BBDMGenerator(SIZE, 1, condition="blur:3", preset="tiny", num_timesteps=20, batch_size=2)
    two.fit(gray_blobs(2), steps=2, progress=False)
    assert len(two.loss_history_) == 2 and two.get_params()["min_train_images"] == 2
    with pytest.raises(InputError, match="at least 2 rare-class images to train, got 1"):
        BBDMGenerator(SIZE, 1, condition="blur:3").fit(gray_blobs(1), steps=1, progress=False)
    for method in ("bbdm", "cyclegan", "masked_ddpm"):
        with pytest.raises(InputError, match="min_train_images must be at least 2, got 1"):
            GENERATORS.get(method)(SIZE, 3, min_train_images=1).check_params()


# -- generation ---------------------------------------------------------------------------------
def test_fixed_chunks_make_outputs_independent_of_the_batch():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 8)
    x = torch.randn(11, 16)
    calls = []

    def network(chunk):
        calls.append(len(chunk))
        return layer(chunk)

    with torch.no_grad():
        whole = in_fixed_chunks(network, x, chunk=4)
        alone = in_fixed_chunks(network, x[5:6], chunk=4)
    assert whole.shape == (11, 8) and set(calls) == {4}
    assert torch.equal(alone[0], whole[5])


def test_interpolation_never_repeats_an_image_for_different_seeds():
    """The reported case: one source, two seeds, the same partner, byte-identical images."""
    rare = np.stack([gray_blobs(1, seed)[0] for seed in range(4)])
    generator = InterpolationGenerator(SIZE, 1).fit(rare)
    source = rare[:1]
    assert generator.distinct_images(rare).tolist() == [3, 3, 3, 3]
    for first in range(12):  # any 3 consecutive seeds: 3 different images, each a real mix
        out = generator.generate(source.repeat(3, 0), [first, first + 1, first + 2])
        assert len({o.tobytes() for o in out}) == 3
        mixes = [np.round(0.9 * source[0] + 0.1 * other.astype(float)) for other in rare[1:]]
        assert all(any(np.array_equal(o, m) for m in mixes) for o in out)
    # seeds 2 and 3 (rounds of a run): the old draw, rng(seed).choice(partners), sent both to
    # the same partner and gave byte-identical images
    pair = generator.generate(source.repeat(2, 0), [2, 3])
    assert not np.array_equal(pair[0], pair[1])
    # duplicates among the fitted images do not count twice
    doubled = InterpolationGenerator(SIZE, 1).fit(np.concatenate([rare, rare[1:2]]))
    assert doubled.distinct_images(rare[:1]).tolist() == [3]
    for weight in (0.5, 1.0):
        with pytest.raises(InputError, match=r"strictly between 0\.5 and 1"):
            InterpolationGenerator(SIZE, 1, weight=weight).fit(rare)
