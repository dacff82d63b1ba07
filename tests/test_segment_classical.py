"""The classical segmenter on the real nuclei image, simulated spreads and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_data

from brain.errors import InputError
from brain.images import read_array, read_image
from brain.segment import SEGMENTERS, ClassicalSegmenter, make_segmenter
from brain.segment.base import relabel_sequential, select_plane
from brain.segment.classical import estimate_scale, naive_watershed
from brain.segment.scoring import score_instances

# measured F1 at IoU 0.5 (bench/bench_segment.py): classical 0.898, naive 0.664
NUCLEI_F1_FLOOR = 0.88


def _blobs(shape=(96, 96), centres=((24, 24), (24, 70), (70, 40)), radius=9, value=200):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    image = np.full(shape, 20.0)
    truth = np.zeros(shape, np.int32)
    for index, (cy, cx) in enumerate(centres, start=1):
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        image[inside] = value
        truth[inside] = index
    noise = np.random.default_rng(0).normal(0, 4, shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)[:, :, None], truth


def test_real_nuclei_f1_floor():
    folder = shared_data("nuclei")
    image = read_array(folder / "img2d.tif")
    truth = read_array(folder / "mask2d.tif")[..., 0]
    assert image.dtype == np.uint16  # read as stored: read_image would leave 2 grey levels
    labels = ClassicalSegmenter().segment(image)
    scores = score_instances(labels, truth)
    assert scores.n_true == 125
    assert scores.at(0.5).f1 >= NUCLEI_F1_FLOOR
    naive = score_instances(naive_watershed(select_plane(image, 0)), truth).at(0.5).f1
    assert naive < scores.at(0.5).f1 - 0.15
    assert estimate_scale(select_plane(image, 0)).elongated is False


def test_simple_blobs_found_exactly():
    image, truth = _blobs()
    labels = ClassicalSegmenter().segment(image)
    assert labels.dtype == np.int32 and labels.shape == truth.shape
    assert sorted(np.unique(labels)) == [0, 1, 2, 3]
    assert score_instances(labels, truth).at(0.75).f1 == 1.0


def test_spreads_scored(tmp_path):
    from curation.demo_spreads import make_spreads

    layout = make_spreads(tmp_path / "spreads", n=4, seed=0)
    tp = fp = fn = 0
    for image_path, mask_path in zip(layout.images, layout.masks, strict=True):
        image = read_image(image_path)
        assert estimate_scale(select_plane(image, 2)).elongated
        counts = score_instances(
            make_segmenter("classical").segment(image, 2), read_array(mask_path)[..., 0]
        ).at(0.5)
        tp, fp, fn = tp + counts.tp, fp + counts.fp, fn + counts.fn
    assert 2 * tp / (2 * tp + fp + fn) >= 0.78  # measured 0.84 on these four


def test_channel_out_of_range_and_nothing_found():
    image, _ = _blobs()
    with pytest.raises(InputError, match="channel 1 out of range"):
        ClassicalSegmenter().segment(image, channel=1)
    with pytest.raises(InputError, match="channel -1 out of range"):
        ClassicalSegmenter().segment(np.repeat(image, 3, axis=2), channel=-1)
    with pytest.raises(InputError, match="no instance found"):
        ClassicalSegmenter().segment(np.full((64, 64, 1), 7, np.uint8))
    with pytest.raises(InputError, match="diameter must be positive"):
        ClassicalSegmenter(diameter=-3).segment(image)
    with pytest.raises(InputError, match="unknown shape"):
        ClassicalSegmenter(shape="square").segment(image)


def test_multichannel_uses_the_chosen_channel():
    image, truth = _blobs()
    rgb = np.zeros((*truth.shape, 3), np.uint8)
    rgb[..., 2] = image[..., 0]
    rgb[..., 0] = np.random.default_rng(1).integers(0, 30, truth.shape)
    labels = ClassicalSegmenter().segment(rgb, channel=2)
    assert score_instances(labels, truth).at(0.5).f1 == 1.0
    with pytest.raises(InputError, match="no instance found"):
        ClassicalSegmenter().segment(np.zeros_like(rgb), channel=2)


def test_registry_and_relabel():
    assert {"classical", "cellpose"} <= set(SEGMENTERS.names())
    with pytest.raises(InputError, match="unknown segmenter"):  # the registry's error
        SEGMENTERS.get("unet")
    labels = relabel_sequential(np.array([[0, 7, 7], [3, 0, 9]]))
    np.testing.assert_array_equal(labels, [[0, 1, 1], [2, 0, 3]])
