"""Per-instance crops: geometry, FiftyOne boxes and masks, background mask-out, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from brain.errors import InputError
from brain.segment.crops import display_uint8, extract_crops


def _scene():
    image = np.zeros((100, 120, 3), np.uint8)
    labels = np.zeros((100, 120), np.int32)
    labels[10:20, 30:50] = 1  # 20 wide, 10 high
    image[10:20, 30:50] = (200, 10, 10)
    labels[60:100, 100:120] = 2  # touches the bottom-right corner
    image[60:100, 100:120] = (10, 200, 10)
    image[22:26, 30:50] = (0, 0, 250)  # a neighbour's pixels next to instance 1
    return image, labels


def test_boxes_masks_and_native_scale():
    image, labels = _scene()
    crops = extract_crops(image, labels, size=32, pad=2)
    assert [c.label for c in crops] == [1, 2]
    first = crops[0]
    assert first.image.shape == (32, 32, 3) and first.image.dtype == np.uint8
    assert first.box == (30, 10, 50, 20)
    assert first.bbox == pytest.approx((30 / 120, 10 / 100, 20 / 120, 10 / 100))
    assert first.mask.shape == (10, 20) and first.mask.all()
    assert first.area == 200
    x0, y0, side = first.window
    assert side == 32  # fits: kept at the image's own scale
    # the crop shows the parent window pixel for pixel
    np.testing.assert_array_equal(first.image[10 - y0, 30 - x0], (200, 10, 10))
    assert first.crop_mask.sum() == 200
    assert (first.image[22 - y0, 30 - x0] == (0, 0, 250)).all()  # neighbour visible


def test_window_outside_image_is_zero_and_large_instances_shrink():
    image, labels = _scene()
    second = extract_crops(image, labels, size=32, pad=4)[1]
    x0, _y0, side = second.window
    assert side == 40 + 2 * 4  # 40 px high + pad: shrunk from 48 to 32
    assert second.image.shape == (32, 32, 3)
    assert x0 + side > 120 and (second.image[:, -3:] == 0).all()  # beyond the right edge
    assert second.crop_mask.sum() == pytest.approx(800 * (32 / 48) ** 2, rel=0.1)


def test_mask_background_hides_neighbours():
    image, labels = _scene()
    first = extract_crops(image, labels, size=32, pad=2, mask_background=True)[0]
    assert (first.image[~first.crop_mask] == 0).all()
    assert (first.image[first.crop_mask] == (200, 10, 10)).all()


def test_bad_input():
    image, labels = _scene()
    with pytest.raises(InputError, match="mask size mismatch"):
        extract_crops(image, labels[:, :-1])
    with pytest.raises(InputError, match="crop size"):
        extract_crops(image, labels, size=4)
    with pytest.raises(InputError, match="pad"):
        extract_crops(image, labels, size=32, pad=16)


def test_display_uint8_stretches_16_bit_linearly():
    raw = np.array([[100, 200], [150, 300]], np.uint16)
    np.testing.assert_array_equal(display_uint8(raw), [[0, 128], [64, 255]])
    same = np.array([[1, 2]], np.uint8)
    assert display_uint8(same) is same
