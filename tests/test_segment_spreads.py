"""Simulated metaphase spreads: deterministic, masks consistent with the image and manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brain.images import read_array, read_image
from curation.demo_spreads import make_spread, make_spreads
from curation.errors import CurateError


def test_make_spreads_layout_and_manifest(tmp_path):
    layout = make_spreads(tmp_path / "a", n=3, seed=5, translocation_rate=1.0)
    assert len(layout.images) == len(layout.masks) == 3
    manifest = json.loads(layout.manifest.read_text())
    assert [s["image"] for s in manifest["spreads"]] == [p.name for p in layout.images]
    total = 0
    for record, image_path, mask_path in zip(
        manifest["spreads"], layout.images, layout.masks, strict=True
    ):
        image = read_image(image_path)
        labels = read_array(mask_path)[..., 0]
        assert image.shape == (256, 256, 3) and labels.dtype == np.uint16
        instances = record["instances"]
        assert sorted(np.unique(labels))[1:] == [i["label"] for i in instances]
        assert 6 <= len(instances) <= 46
        classes = [i["class"] for i in instances]
        assert classes.count("translocation") == 2  # the reciprocal pair
        paints = {i["paint"] for i in instances}
        assert {"red+green", "green+red", "yellow"} <= paints
        # DAPI (blue) is bright on chromosomes and dark elsewhere
        assert image[..., 2][labels > 0].mean() > 3 * image[..., 2][labels == 0].mean()
        # painted chromosomes carry red or green, unpainted ones do not
        for inst in instances:
            red = np.percentile(image[..., 0][labels == inst["label"]], 95)
            assert (red > 50) == ("red" in inst["paint"] or "yellow" in inst["paint"])
        total += len(instances)
    assert layout.n_instances == total and layout.n_translocations == 6


def test_deterministic_per_seed():
    a = make_spread(11)
    b = make_spread(11)
    c = make_spread(12)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_chromosome_lengths_fit_a_crop():
    _, labels, instances = make_spread(3, translocation=True)
    from scipy import ndimage as ndi

    for box in ndi.find_objects(labels):
        if box is not None:
            assert max(s.stop - s.start for s in box) <= 48  # fits a 64 px crop with margin
    assert all(12 <= i["length"] <= 40 for i in instances)


def test_bad_arguments(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(CurateError, match="not empty"):
        make_spreads(tmp_path / "full")
    with pytest.raises(CurateError):
        make_spreads(tmp_path / "b", n=0)
    with pytest.raises(CurateError, match="size"):
        make_spread(0, size=64)
