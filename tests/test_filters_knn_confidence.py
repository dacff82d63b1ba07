"""``knn_precision`` and ``confidence`` filters."""

from __future__ import annotations

import numpy as np
import pytest
from _filter_blobs import make_blobs

from brain.errors import InputError
from brain.filters import ConfidenceFilter, KnnPrecisionFilter

BLOBS = make_blobs()


def test_knn_manifold_membership():
    flt = KnnPrecisionFilter(k=3).fit(BLOBS.real, BLOBS.rare)
    assert flt.default_level_ == 1.0 and flt.threshold() == 1.0
    assert flt.radii_.shape == (int(BLOBS.rare.sum()),)
    assert flt.decide(BLOBS.near).mean() >= 0.9
    assert not flt.decide(BLOBS.far).any()
    # the manifold covers both rare clusters: the light one is real rare class too
    assert flt.decide(BLOBS.minor).mean() >= 0.9
    near, far = flt.score_samples(BLOBS.near), flt.score_samples(BLOBS.far)
    assert near.min() > far.max()


def test_knn_level_scales_the_balls():
    flt = KnnPrecisionFilter(k=3).fit(BLOBS.real, BLOBS.rare)
    rng = np.random.default_rng(2)
    probes = BLOBS.real[BLOBS.rare][:50] + 1.5 * rng.normal(size=(50, BLOBS.real.shape[1]))
    scores = flt.score_samples(probes)
    previous = np.zeros(len(probes), bool)
    for level in (0.25, 0.5, 1.0, 2.0, 4.0):
        passed = flt.decide_scores(scores, level)
        assert (passed >= previous).all()
        previous = passed
    assert flt.decide_scores(scores, 0.25).sum() < flt.decide_scores(scores, 4.0).sum()
    with pytest.raises(InputError, match="positive"):
        flt.decide(probes, level=0.0)


def test_knn_pca_and_determinism():
    a = KnnPrecisionFilter(pca_components=5).fit(BLOBS.real, BLOBS.rare)
    b = KnnPrecisionFilter(pca_components=5).fit(BLOBS.real, BLOBS.rare)
    assert a.reference_.shape[1] == 5
    np.testing.assert_array_equal(a.score_samples(BLOBS.near), b.score_samples(BLOBS.near))


def test_knn_bad_input():
    few = np.zeros_like(BLOBS.rare)
    few[np.flatnonzero(BLOBS.rare)[:3]] = True
    fallback = KnnPrecisionFilter(k=3).fit(BLOBS.real, few)  # few rare samples: a smaller k
    assert fallback.notes_ == ["3 real rare samples: k lowered from 3 to 2"]
    one = np.zeros_like(BLOBS.rare)
    one[np.flatnonzero(BLOBS.rare)[0]] = True
    with pytest.raises(InputError, match="need at least 2"):
        KnnPrecisionFilter(k=3).fit(BLOBS.real, one)
    same = BLOBS.real.copy()
    same[BLOBS.rare] = same[BLOBS.rare][0]
    with pytest.raises(InputError, match="degenerate"):
        KnnPrecisionFilter().fit(same, BLOBS.rare)
    flt = KnnPrecisionFilter().fit(BLOBS.real, BLOBS.rare)
    with pytest.raises(InputError, match="different runs"):
        flt.score_samples(np.ones((2, 3)))


def test_confidence_threshold():
    p_real = np.array([0.9, 0.8, 0.2, 0.1, 0.6])
    y = np.array([1, 1, 0, 0, 1])
    flt = ConfidenceFilter().fit(p_real, y)
    assert flt.input_kind == "probability"
    assert flt.real_rare_pass_rate_ == 1.0
    probs = np.array([[0.1], [0.5], [0.7], [0.99]])
    np.testing.assert_array_equal(flt.score_samples(probs), [0.1, 0.5, 0.7, 0.99])
    assert flt.decide(probs).tolist() == [False, True, True, True]
    assert flt.decide(probs, level=0.8).tolist() == [False, False, False, True]
    assert ConfidenceFilter().fit(p_real, y).decide(probs, level=0.6).tolist() == [
        False,
        False,
        True,
        True,
    ]


def test_confidence_bad_input():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        ConfidenceFilter().fit([0.5, 1.2], [1, 0])
    with pytest.raises(InputError, match="NaN"):
        ConfidenceFilter().fit([0.5, np.nan], [1, 0])
    with pytest.raises(InputError, match="need at least 1"):
        ConfidenceFilter().fit([0.5, 0.2], [0, 0])
    flt = ConfidenceFilter().fit([0.5, 0.2], [1, 0])
    with pytest.raises(InputError, match="no samples"):
        flt.score_samples([])
    with pytest.raises(InputError, match="one number per sample"):
        flt.score_samples(np.ones((3, 2)))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        flt.decide([0.5], level=2.0)
