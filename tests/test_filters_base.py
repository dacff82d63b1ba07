"""The filter interface: registry, input validation, fitted checks (no FiftyOne)."""

from __future__ import annotations

import numpy as np
import pytest
from _filter_blobs import make_blobs
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from brain.errors import InputError
from brain.filters import FILTERS, GmmFullFilter, NotFittedError, make_filter
from brain.filters.base import (
    as_float_matrix,
    as_probability_column,
    as_rare_mask,
    check_covariance,
)


def test_registry_lists_the_filters_and_rejects_unknown_names():
    assert FILTERS.names() == [
        "class_posterior",
        "combined",
        "confidence",
        "gmm_full",
        "knn_precision",
        "realism",
        "umap_gmm",
    ]
    with pytest.raises(InputError, match="known: class_posterior, combined, confidence"):
        make_filter("nope")
    with pytest.raises(InputError, match="unknown parameter"):
        make_filter("gmm_full", colour="red")
    flt = make_filter("gmm_full", pca_components=4)
    assert isinstance(flt, GmmFullFilter) and flt.get_params()["pca_components"] == 4


def test_input_kinds():
    assert {name: FILTERS.get(name).input_kind for name in FILTERS.names()} == {
        "class_posterior": "embedding",
        "combined": "embedding",
        "confidence": "probability",
        "gmm_full": "embedding",
        "knn_precision": "embedding",
        "realism": "embedding",
        "umap_gmm": "embedding",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[1.0, np.nan], [0.0, 1.0]], "NaN or infinite values in 1 of 2"),
        ([[1.0, np.inf]], "NaN or infinite"),
        ([np.ones(3), None], "missing or ragged"),
        ([[1.0, 2.0], [1.0]], "missing or ragged"),
        (np.ones(4), "2-D"),
        (np.ones((3, 0)), "no features"),
    ],
)
def test_bad_embeddings_raise(value, message):
    with pytest.raises(InputError, match=message):
        as_float_matrix(np.array(value, dtype=object) if value is not None else value)


def test_probabilities_and_labels_validation():
    assert as_probability_column([0.1, 0.9]).shape == (2, 1)
    assert as_probability_column(np.array([[0.5]])).shape == (1, 1)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        as_probability_column([0.5, 1.5])
    with pytest.raises(InputError, match="NaN"):
        as_probability_column([0.5, np.nan])
    assert as_rare_mask([0, 1, 1], 3).tolist() == [False, True, True]
    with pytest.raises(InputError, match="0/1"):
        as_rare_mask([0, 2, 1], 3)
    with pytest.raises(InputError, match="one value per sample"):
        as_rare_mask([0, 1], 3)


def test_check_covariance():
    check_covariance(np.diag([1.0, 0.5]))
    with pytest.raises(InputError, match="degenerate"):
        check_covariance(np.array([[1.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(InputError, match="degenerate"):
        check_covariance(np.zeros((2, 2)))


@pytest.mark.parametrize("name", ["gmm_full", "knn_precision", "class_posterior"])
def test_score_samples_is_per_sample_and_score_their_mean(name):
    blobs = make_blobs()
    flt = make_filter(name).fit(blobs.real, blobs.rare)
    probes = np.vstack([blobs.near, blobs.far])
    per_sample = flt.score_samples(probes)
    assert per_sample.shape == (len(probes),) and per_sample.dtype == np.float64
    np.testing.assert_array_equal(per_sample[: len(blobs.near)], flt.score_samples(blobs.near))
    score = flt.score(probes)
    assert isinstance(score, float) and score == pytest.approx(per_sample.mean())
    assert flt.score(probes, np.ones(len(probes))) == score  # y is ignored, as in sklearn
    assert flt.score(blobs.near) > flt.score(blobs.far)
    np.testing.assert_array_equal(flt.decide(probes), per_sample >= flt.threshold())


@pytest.mark.parametrize("name", FILTERS.names())
def test_unfitted_filters_raise_sklearns_not_fitted_error(name):
    flt = make_filter(name)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(flt)
    for call in (
        lambda: flt.score_samples(np.ones((2, 3))),
        lambda: flt.score(np.ones((2, 3))),
        lambda: flt.decide(np.ones((2, 3))),
        flt.threshold,
    ):
        with pytest.raises(NotFittedError, match=f"{type(flt).__name__} is not fitted yet") as e:
            call()
        assert isinstance(e.value, SklearnNotFittedError) and isinstance(e.value, RuntimeError)


def test_fitted_means_default_level_is_set():
    blobs = make_blobs()
    flt = GmmFullFilter(pca_components=4)
    flt.n_features_in_ = blobs.real.shape[1]  # what a fit that failed half-way leaves
    with pytest.raises(NotFittedError):
        flt.check_is_fitted()
    flt.fit(blobs.real, blobs.rare)
    check_is_fitted(flt)
    flt.check_is_fitted()


def test_unfitted_filter_and_bad_scoring_input():
    blobs = make_blobs()
    flt = GmmFullFilter(pca_components=4)
    with pytest.raises(NotFittedError):
        flt.score_samples(blobs.near)
    flt.fit(blobs.real, blobs.rare)
    with pytest.raises(InputError, match="different runs"):
        flt.score_samples(blobs.near[:, :5])
    with pytest.raises(InputError, match="no samples to score"):
        flt.score_samples(np.empty((0, blobs.real.shape[1])))
    with pytest.raises(InputError, match="NaN"):
        flt.score_samples(
            np.where(np.arange(blobs.near.size).reshape(blobs.near.shape) == 3, np.nan, 0)
        )
    with pytest.raises(InputError, match="between 0 and 1"):
        flt.decide(blobs.near, level=1.5)
