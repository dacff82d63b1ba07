"""Whole images -> crops in a real FiftyOne dataset; parent links; CLI; bad input adds nothing."""

from __future__ import annotations

import json

import fiftyone as fo
import numpy as np
import pytest
from conftest import shared_data

from brain.images import read_array, read_image, write_png
from brain.segment.scoring import score_instances
from curation.cli import main
from curation.errors import CurateError
from curation.segment.api import parents_name, score_files, segment_images, write_labels


@pytest.fixture(scope="module")
def spreads(tmp_path_factory):
    from curation.demo_spreads import make_spreads

    return make_spreads(tmp_path_factory.mktemp("spreads") / "s", n=2, seed=0)


def _labels_from_detections(parent) -> np.ndarray:
    """Rebuild the label image from a parent's detections (box + mask)."""
    height, width = parent.metadata.height, parent.metadata.width
    labels = np.zeros((height, width), np.int32)
    for index, det in enumerate(parent["instances"].detections, start=1):
        x, y, w, h = det.bounding_box
        x0, y0 = round(x * width), round(y * height)
        mask = det.mask
        assert mask.shape == (round(h * height), round(w * width))
        labels[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]][mask] = index
    return labels


def test_segment_spreads_links_crops_and_parents(spreads, name, tmp_path):
    report = segment_images(
        spreads.images, name, model="classical", channel=2, save_labels=tmp_path / "labels"
    )
    crops = fo.load_dataset(name)
    parents = fo.load_dataset(parents_name(name))
    assert report.images == 2 and len(parents) == 2
    assert report.added == len(crops) == sum(report.instances.values())
    assert set(crops.distinct("split")) == {"pool"} and set(crops.distinct("origin")) == {"real"}
    assert len(crops.distinct("group")) == 2  # one group per whole image

    for sample in crops.take(5, seed=0):
        parent = parents[sample.parent.sample_id]
        assert parent.source_filepath == sample.parent.filepath
        assert sample.parent.dataset == parents.name
        by_id = {d.id: d for d in parent.instances.detections}
        detection = by_id[sample.parent.detection_id]
        assert detection.crop_id == sample.id
        assert detection.index == sample.parent.instance_label
        assert sample.bbox == pytest.approx(detection.bounding_box)
        crop = read_image(sample.filepath)
        assert crop.shape == (64, 64, 3)
        assert sample.instance_mask.mask.shape == (64, 64) and sample.instance_mask.mask.any()

    # the detections on the parents reproduce the segmentation, which matches the ground truth
    for parent, mask_path in zip(parents.sort_by("source_filepath"), spreads.masks, strict=True):
        assert parent.filepath == parent.source_filepath  # a PNG is shown as it is
        truth = read_array(mask_path)[..., 0]
        rebuilt = _labels_from_detections(parent)
        assert score_instances(rebuilt, truth).at(0.5).f1 >= 0.75
        saved = tmp_path / "labels" / f"{mask_path.stem.replace('_mask', '')}_labels.tif"
        assert (
            score_files(saved, mask_path).at(0.5).f1 == score_instances(rebuilt, truth).at(0.5).f1
        )

    with pytest.raises(CurateError, match="already segmented"):
        segment_images(spreads.images[:1], name, model="classical", channel=2)
    assert len(fo.load_dataset(name)) == report.added


def test_real_nuclei_16_bit_gets_a_display_parent(name):
    folder = shared_data("nuclei")
    report = segment_images(
        [folder / "img2d.tif"], name, model="classical", size=48, pad=2, mask_background=True
    )
    parent = fo.load_dataset(parents_name(name)).first()
    assert parent.filepath.endswith(".png") and parent.source_filepath.endswith("img2d.tif")
    shown = read_image(parent.filepath)
    assert shown.max() == 255 and shown.shape == (512, 512, 1)  # stretched, not 2 grey levels
    truth = read_array(folder / "mask2d.tif")[..., 0]
    assert score_instances(_labels_from_detections(parent), truth).at(0.5).f1 >= 0.88
    crop = fo.load_dataset(name).first()
    pixels = read_image(crop.filepath)[..., 0]
    assert pixels.shape == (48, 48) and (pixels[crop.instance_mask.mask == 0] == 0).all()
    assert report.added == len(fo.load_dataset(name))


def _bad_inputs(tmp_path, spreads):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    blank = tmp_path / "blank.png"
    write_png(np.full((64, 64, 3), 9, np.uint8), blank)
    good = str(spreads.images[0])
    return {
        "cannot read image": [good, str(broken), "--channel", "2"],
        "channel 3 out of range": [good, "--channel", "3"],
        "no instance found": [good, str(blank), "--channel", "2"],
        "Cellpose weights not found": [good, "--model", "cpsam"],
        "unknown model": [good, "--model", "cyto9"],
        "pad must be": [good, "--pad", "40"],
    }


def test_bad_input_one_line_exit_2_nothing_added(spreads, name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path / "no-cache"))
    from curation.media import media_root

    for expected, args in _bad_inputs(tmp_path, spreads).items():
        model = [] if "--model" in args else ["--model", "classical"]
        code = main(["segment", *args, "--dataset", name, *model])
        err = capsys.readouterr().err.strip()
        assert code == 2, expected
        assert expected in err and "\n" not in err, err
        assert not fo.dataset_exists(name) and not fo.dataset_exists(parents_name(name))
        assert not media_root(name).exists()


def test_cli_segment_and_score(spreads, name, tmp_path, capsys):
    code = main(
        [
            "segment",
            str(spreads.images[0]),
            "--dataset",
            name,
            "--model",
            "classical",
            "--channel",
            "2",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == len(fo.load_dataset(name)) > 10

    pred = write_labels(read_array(spreads.masks[0])[..., 0], tmp_path / "pred.tif")
    assert main(["segment-score", str(pred), str(spreads.masks[0])]) == 0
    assert "F1 1.000" in capsys.readouterr().out
    assert main(["segment-score", str(pred), str(spreads.masks[0]), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == 1.0

    small = write_labels(np.zeros((10, 10), np.int32), tmp_path / "small.tif")
    assert main(["segment-score", str(small), str(spreads.masks[0])]) == 2
    err = capsys.readouterr().err
    assert "mask size mismatch" in err and err.count("\n") == 1
    assert main(["segment-score", str(spreads.images[0]), str(spreads.masks[0])]) == 2
    assert "3 channels" in capsys.readouterr().err
