"""Instance scores on hand-made label images with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from brain.errors import InputError
from brain.segment.scoring import IOU_THRESHOLDS, iou_matrix, match_counts, score_instances


def _squares(shape=(40, 40), boxes=()) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for value, (y0, x0, y1, x1) in boxes:
        labels[y0:y1, x0:x1] = value
    return labels


def test_iou_matrix_values_and_label_order():
    truth = _squares(boxes=[(5, (0, 0, 10, 10)), (9, (20, 20, 30, 30))])
    # label 3: exact copy of truth 5; label 7: half of truth 9 (IoU 0.5) and nothing else
    pred = _squares(boxes=[(3, (0, 0, 10, 10)), (7, (20, 20, 30, 25))])
    iou = iou_matrix(pred, truth)
    assert iou.shape == (2, 2)
    np.testing.assert_allclose(iou, [[1.0, 0.0], [0.0, 0.5]])


def test_scores_with_known_counts():
    truth = _squares(boxes=[(1, (0, 0, 10, 10)), (2, (20, 20, 30, 30)), (3, (0, 30, 5, 35))])
    # one exact; one shifted so IoU = 50 / 150 = 1/3; one false positive; truth 3 missed
    pred = _squares(
        boxes=[(1, (0, 0, 10, 10)), (2, (20, 25, 30, 35)), (4, (32, 0, 38, 6))], shape=(40, 40)
    )
    scores = score_instances(pred, truth, thresholds=[0.3, 0.5])
    assert (scores.n_pred, scores.n_true) == (3, 3)
    at50 = scores.at(0.5)
    assert (at50.tp, at50.fp, at50.fn) == (1, 2, 2)
    assert at50.precision == pytest.approx(1 / 3)
    assert at50.recall == pytest.approx(1 / 3)
    assert at50.f1 == pytest.approx(1 / 3)
    assert at50.average_precision == pytest.approx(1 / 5)
    at30 = scores.at(0.3)
    assert (at30.tp, at30.fp, at30.fn) == (2, 1, 1)
    assert scores.mean_ap == pytest.approx((1 / 5 + 2 / 4) / 2)
    summary = scores.as_dict()
    assert summary["f1"] == pytest.approx(1 / 3) and len(summary["by_threshold"]) == 2


def test_hungarian_beats_greedy_at_low_threshold():
    # pred A overlaps truth X (0.45) and Y (0.40); pred B overlaps only X (0.42).
    # Greedy on the best IoU would give A-X and leave B unmatched (1 TP); optimal gives 2.
    iou = np.array([[0.45, 0.40], [0.42, 0.0]])
    assert match_counts(iou, 0.3).tp == 2


def test_perfect_and_empty_predictions():
    truth = _squares(boxes=[(1, (0, 0, 10, 10)), (2, (20, 20, 30, 30))])
    perfect = score_instances(truth * 3, truth)  # label values do not matter
    assert perfect.at(0.5).f1 == 1.0 and perfect.mean_ap == 1.0
    assert len(perfect.by_threshold) == len(IOU_THRESHOLDS) == 10
    empty = score_instances(np.zeros_like(truth), truth)
    assert empty.at(0.5).f1 == 0.0 and empty.at(0.5).fn == 2
    with pytest.raises(KeyError):
        perfect.at(0.42)


def test_size_mismatch_and_bad_labels_are_user_errors():
    truth = _squares(boxes=[(1, (0, 0, 10, 10))])
    with pytest.raises(InputError, match="mask size mismatch"):
        score_instances(np.zeros((40, 41), np.int32), truth)
    with pytest.raises(InputError, match="integer labels"):
        score_instances(truth.astype(float), truth)
    with pytest.raises(InputError, match="2-D"):
        score_instances(np.zeros((4, 40, 40), np.int32), np.zeros((4, 40, 40), np.int32))
