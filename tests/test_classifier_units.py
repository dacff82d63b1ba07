"""Classifier building blocks on arrays: metrics, resize policy, augmentation, batching,
class weights, the model factory and checkpoints (no database)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from brain.augment import augment_batch, random_crop, random_flips, random_right_angles
from brain.checkpoints import ModelCard, load_checkpoint, save_checkpoint
from brain.data import check_shapes, pad_to_square, stack_images
from brain.decoding import ImageCache
from brain.errors import InputError
from brain.images import write_png
from brain.metrics import (
    mean_std,
    pool_at_specificity,
    rare_class_metrics,
    rare_scores,
    recall_at_specificity,
    summarise,
    threshold_at_specificity,
)
from brain.models import build_model, feature_dim, forward_features, pretrained_path
from brain.training import (
    TrainSettings,
    batch_indices,
    class_weights,
    make_scheduler,
    selection_key,
)


def test_rare_class_metrics_against_hand_counts():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    rare_p = np.array([0.1, 0.6, 0.2, 0.9, 0.4, 0.8, 0.3, 0.7])
    proba = np.stack([1 - rare_p, rare_p], axis=1)
    m = rare_class_metrics(labels, proba, rare_index=1)
    # predicted rare: idx 1, 3, 5, 7 -> TP 3 (3, 5, 7), FP 1 (1); FN 1 (4)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["confusion"] == [[3, 1], [1, 3]]
    # AUC: 16 positive/negative pairs; only (pos 0.4, neg 0.6) is misordered
    assert m["auc"] == pytest.approx(15 / 16)
    assert m["support"] == 4


def test_rare_class_metrics_of_a_fine_label_network_are_the_task_s():
    """Classes 2 and 3 make up the rare class: a rare sample predicted as the other rare fine
    class is a hit, and accuracy is that of the rare-against-the-rest decision."""
    labels = np.array([0, 1, 2, 3, 2, 0])
    predicted = np.array([1, 0, 3, 2, 0, 0])  # fine classes right only for the last sample
    proba = np.eye(4)[predicted] * 0.7 + 0.075
    m = rare_class_metrics(labels, proba, rare_index=[2, 3])
    assert (m["precision"], m["recall"], m["support"]) == (1.0, pytest.approx(2 / 3), 3)
    assert m["accuracy"] == pytest.approx(5 / 6)  # fine-class accuracy would be 1 / 6


def test_rare_class_metrics_degenerate_cases():
    labels = np.zeros(4, dtype=int)
    proba = np.tile([0.9, 0.1], (4, 1))
    m = rare_class_metrics(labels, proba, rare_index=1)
    assert m["auc"] is None and m["f1"] == 0.0 and m["precision"] == 0.0


def test_summary_mean_and_sample_std():
    summary = summarise([{"f1": 0.5, "auc": None}, {"f1": 0.7, "auc": 0.8}])
    assert summary["f1"]["mean"] == pytest.approx(0.6)
    assert summary["f1"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary["auc"] == {"mean": 0.8, "std": 0.0, "n": 1}
    assert mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_threshold_at_specificity_keeps_the_share_of_other_samples_below_it():
    other = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.95])
    # 90% of 10: one other-class sample may lie above; a sample is rare when score > threshold
    assert threshold_at_specificity(other, 0.9) == 0.8
    assert threshold_at_specificity(other, 0.5) == 0.4  # 5 of the 10 lie above
    assert threshold_at_specificity(other, 0.95) == 0.95  # 0.5 samples allowed: none above
    assert np.mean(other <= threshold_at_specificity(other, 0.75)) >= 0.75
    tied = np.array([0.1, 0.9, 0.9, 0.9])  # ties: fewer above than allowed, never more
    assert np.mean(tied <= threshold_at_specificity(tied, 0.5)) >= 0.5
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(InputError, match="specificity must lie strictly between 0 and 1"):
            threshold_at_specificity(other, bad)
    with pytest.raises(InputError, match="specificity"):
        TrainSettings(specificity=1.0).check()


def test_recall_at_specificity_picks_the_threshold_on_val_and_reports_test():
    val_truth = np.array([0] * 10 + [1] * 4, dtype=bool)
    val_score = np.r_[np.linspace(0.0, 0.9, 10), [0.5, 0.8, 0.95, 0.99]]
    test_truth = np.array([0] * 5 + [1] * 4, dtype=bool)
    test_score = np.array([0.1, 0.2, 0.85, 0.3, 0.9, 0.95, 0.7, 0.81, 0.2])
    point = recall_at_specificity(val_truth, val_score, test_truth, test_score, 0.9)
    assert point["threshold"] == pytest.approx(0.8)  # the 2nd highest of the 10 val others
    assert point["val_specificity"] == pytest.approx(0.9)
    assert (point["tp"], point["n_rare"], point["recall"]) == (2, 4, 0.5)  # 0.95, 0.81
    assert (point["tn"], point["n_other"], point["test_specificity"]) == (3, 5, 0.6)
    # the test scores never move the threshold
    shifted = recall_at_specificity(val_truth, val_score, test_truth, test_score + 0.5, 0.9)
    assert shifted["threshold"] == point["threshold"]
    no_other = recall_at_specificity(val_truth[10:], val_score[10:], test_truth, test_score, 0.9)
    assert no_other["threshold"] is None and no_other["recall"] is None
    pooled = pool_at_specificity([point, {**point, "tp": 4, "tn": 5}])
    assert (pooled["recall"], pooled["test_specificity"]) == (6 / 8, 8 / 10)
    assert pooled["thresholds"] == [point["threshold"]] * 2
    proba = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(rare_scores(proba, [1, 2]), [0.8, 0.4])


def test_resize_policy():
    assert check_shapes([(8, 8, 3), (8, 8, 3)], None) == (8, 8, 3)
    with pytest.raises(InputError, match=r"mixed sizes.*pass size=N"):
        check_shapes([(8, 8, 3), (10, 8, 3)], None)
    with pytest.raises(InputError, match="mixed channel counts"):
        check_shapes([(8, 8, 3), (8, 8, 1)], 8)
    square = pad_to_square(torch.ones(1, 2, 4, dtype=torch.uint8), "constant:0")
    assert square.shape == (1, 4, 4)
    assert square[0, :, 0].tolist() == [0, 1, 1, 0]  # centred, zero padding
    wide = np.full((8, 16, 1), 200, np.uint8)
    wide[3:5, 6:10] = 20  # a dark object on a light background
    stacked = stack_images([wide, np.full((9, 9, 1), 50, np.uint8)], 8, "constant:0")
    assert stacked.shape == (2, 1, 8, 8) and stacked.dtype == torch.uint8
    assert stacked[0, 0, 0, 0] == 0 and stacked[0, 0, 3, 0] == 200  # padded top, kept middle
    assert stacked[1, 0, 4, 4] == 50
    # the default keeps the background: the median colour of the border
    assert stack_images([wide], 8)[0, 0, 0, 0] == 200
    tall = torch.arange(10, dtype=torch.uint8).view(1, 5, 2)  # padded 1 left, 2 right
    assert pad_to_square(tall, "edge")[0, 0].tolist() == [0, 0, 1, 1, 1]
    assert pad_to_square(tall, "reflect")[0, 0].tolist() == [0, 0, 1, 1, 0]
    assert pad_to_square(tall, "constant:9")[0, :, 0].tolist() == [9] * 5
    for bad in ("black", "constant", "constant:300", "edge:1"):
        with pytest.raises(InputError, match="unknown padding"):
            pad_to_square(tall, bad)


def test_image_cache_reuses_and_notices_changes(tmp_path):
    path = tmp_path / "a.png"
    write_png(np.zeros((4, 4, 3), np.uint8), path)
    cache = ImageCache(max_bytes=10_000)
    first = cache.read(str(path))
    assert cache.read(str(path)) is first
    write_png(np.full((5, 5, 3), 7, np.uint8), path)
    assert cache.read(str(path)).shape == (5, 5, 3)
    with pytest.raises(InputError, match="not found"):
        cache.read(str(tmp_path / "missing.png"))
    small = ImageCache(max_bytes=100)
    small.read(str(path))
    assert len(small) == 1
    write_png(np.zeros((5, 5, 3), np.uint8), tmp_path / "b.png")
    small.read(str(tmp_path / "b.png"))
    assert len(small) == 1  # the older entry was evicted


def test_augmentation_is_per_sample_and_seeded():
    batch = torch.arange(64 * 3 * 8 * 8, dtype=torch.int64).remainder(251).to(torch.uint8)
    batch = batch.view(64, 3, 8, 8)
    out_a = augment_batch(batch, torch.Generator().manual_seed(1))
    out_b = augment_batch(batch, torch.Generator().manual_seed(1))
    assert out_a.shape == batch.shape and out_a.dtype == torch.uint8
    assert torch.equal(out_a, out_b)
    flipped = random_flips(batch, torch.Generator().manual_seed(2))
    changed = [not torch.equal(flipped[i], batch[i]) for i in range(64)]
    assert 0 < sum(changed) < 64  # each sample draws its own flips
    turned = random_right_angles(batch, torch.Generator().manual_seed(3))
    for i in range(64):
        assert any(torch.equal(turned[i], torch.rot90(batch[i], k, (1, 2))) for k in range(4))
    cropped = random_crop(torch.full((16, 1, 8, 8), 9, dtype=torch.uint8), torch.Generator())
    assert cropped.shape == (16, 1, 8, 8) and (cropped == 9).all()  # edge padding: no border
    ramp = torch.arange(8, dtype=torch.uint8).repeat(16, 1, 8, 1)  # columns 0..7
    shifted = random_crop(ramp, torch.Generator().manual_seed(1))
    assert not all(torch.equal(shifted[i], ramp[i]) for i in range(16))  # crops move
    assert shifted.min() == 0 and shifted.max() == 7  # padding repeats the edge values


def test_batches_and_class_weights():
    chunks = batch_indices(65, 32, torch.Generator().manual_seed(0))
    assert [len(c) for c in chunks] == [32, 33]  # a trailing single sample is merged
    assert sorted(torch.cat(chunks).tolist()) == list(range(65))
    weights = class_weights(np.array([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0, 0.0])


def test_epoch_selection_keys():
    early = {"f1": 0.5, "auc": 0.9}
    late = {"f1": 0.6, "auc": 0.7}
    assert selection_key(late, 0.5) > selection_key(early, 0.4)  # the protocol: F1 first
    assert selection_key(early, 0.4, "auc") > selection_key(late, 0.5, "auc")
    assert selection_key(early, 0.4, "loss") > selection_key(late, 0.5, "loss")
    assert selection_key({"f1": 0.5, "auc": None}, 0.3) == (0.5, 0.0, -0.3)
    with pytest.raises(ValueError, match="unknown selection"):
        selection_key(early, 0.1, "acc")


def test_learning_rate_schedules():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    assert make_scheduler(optimizer, TrainSettings(epochs=4)) is None  # the protocol: constant
    cosine = make_scheduler(optimizer, TrainSettings(epochs=4, schedule="cosine"))
    rates = []
    for _ in range(4):
        optimizer.step()
        cosine.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-3 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(1, 5)])
    with pytest.raises(ValueError, match="unknown schedule"):
        make_scheduler(optimizer, TrainSettings(schedule="step"))


@pytest.mark.parametrize(("size", "small_stem"), [(28, True), (128, False)])
def test_model_factory_stem_channels_and_features(size, small_stem):
    model = build_model("resnet18", 3, in_channels=1, input_size=(size, size)).eval()
    assert model.conv1.in_channels == 1
    assert (model.conv1.kernel_size == (3, 3)) is small_stem
    x = torch.zeros(2, 1, size, size)
    with torch.inference_mode():
        assert model(x).shape == (2, 3)
        assert forward_features(model, x).shape == (2, feature_dim("resnet18"))


def test_unknown_architecture_and_absent_pretrained_weights(monkeypatch, tmp_path):
    with pytest.raises(InputError, match=r"unknown architecture 'vgg'.*resnet18"):
        build_model("vgg", 2, in_channels=3, input_size=(32, 32))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert pretrained_path("resnet50").parent == tmp_path / "checkpoints"
    with pytest.raises(InputError, match="no local resnet18 weights"):
        build_model("resnet18", 2, in_channels=3, input_size=(32, 32), pretrained=True)


def test_local_pretrained_weights_are_used_where_shapes_fit(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(123)
    imagenet = torchvision.models.resnet18(weights=None).state_dict()  # stands in for ImageNet
    pretrained_path("resnet18").parent.mkdir(parents=True)
    torch.save(imagenet, pretrained_path("resnet18"))

    big = build_model("resnet18", 2, in_channels=3, input_size=(128, 128), pretrained=True)
    assert torch.equal(big.conv1.weight, imagenet["conv1.weight"])
    assert torch.equal(big.layer3[0].conv1.weight, imagenet["layer3.0.conv1.weight"])
    assert big.fc.weight.shape == (2, 512)  # a new head for our classes

    grey = build_model("resnet18", 2, in_channels=1, input_size=(128, 128), pretrained=True)
    mean_rgb = imagenet["conv1.weight"].mean(dim=1, keepdim=True)
    assert torch.allclose(grey.conv1.weight, mean_rgb)

    small = build_model("resnet18", 2, in_channels=3, input_size=(28, 28), pretrained=True)
    assert small.conv1.weight.shape[2:] == (3, 3)  # the small stem keeps its own init
    assert torch.equal(small.layer1[0].conv2.weight, imagenet["layer1.0.conv2.weight"])


def _card(**changes) -> ModelCard:
    fields = {
        "arch": "resnet18",
        "classes": ["a", "b"],
        "rare_class": "b",
        "in_channels": 3,
        "input_size": [16, 16],
        "resize": "none",
        "mean": [0.5] * 3,
        "std": [0.2] * 3,
        "data_digest": "x",
        "seed": 0,
        "best_epoch": 1,
    }
    return ModelCard(**{**fields, **changes})


def test_checkpoint_round_trip_and_mismatches(tmp_path):
    model = build_model("resnet18", 2, in_channels=3, input_size=(16, 16))
    save_checkpoint(model, _card(), tmp_path / "ck")
    loaded, card = load_checkpoint(tmp_path / "ck")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert json.loads((tmp_path / "ck" / "model.json").read_text())["classes"] == ["a", "b"]
    card.check_data(["a", "b"], "b", [(16, 16, 3)])
    with pytest.raises(InputError, match="classes"):
        card.check_data(["a", "b", "c"], "b", [])
    with pytest.raises(InputError, match="expects 16x16x3"):
        card.check_data(["a", "b"], "b", [(20, 20, 3)])
    with pytest.raises(InputError, match="expects 16x16x3"):
        _card(resize="pad-resize").check_data(["a", "b"], "b", [(20, 20, 1)])
    _card(resize="pad-resize").check_data(["a", "b"], "b", [(20, 20, 3)])

    # a torch.save state_dict is read with weights_only=True
    (tmp_path / "ck" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "ck" / "model.pt")
    load_checkpoint(tmp_path / "ck")
    # weights that do not fit the card are refused
    card_path = tmp_path / "ck" / "model.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "classes": ["a"] * 3}))
    with pytest.raises(InputError, match="does not match its model card"):
        load_checkpoint(tmp_path / "ck")
    # a card with keys a card does not have, or without those it must have, is refused
    card_path.write_text(json.dumps({"arch": "resnet18", "colour": "blue"}))
    with pytest.raises(InputError, match=r"unknown key\(s\) colour and missing key\(s\) classes"):
        load_checkpoint(tmp_path / "ck")
