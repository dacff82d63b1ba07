"""The pure maths of the filters: Mahalanobis, chi-square levels, ellipses, k-NN radii, quality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis

from brain.errors import InputError
from brain.filters.maths import (
    chi2_radius_sq,
    chi2_tail,
    ellipse_geometry,
    ellipse_outline,
    full_covariances,
    heaviest_component,
    knn_radii,
    mahalanobis_sq,
    realism_scores,
)
from brain.filters.quality import filter_quality


def test_mahalanobis_matches_scipy():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 3))
    covariance = A @ A.T + np.eye(3)
    precision = np.linalg.inv(covariance)
    mean = rng.normal(size=3)
    X = rng.normal(size=(5, 3))
    expected = [mahalanobis(x, mean, precision) ** 2 for x in X]
    np.testing.assert_allclose(mahalanobis_sq(X, mean, precision), expected)


def test_chi2_level_and_tail_agree():
    # 2 dof: the level-L ellipse has squared radius -2 ln(1 - L)
    assert chi2_radius_sq(0.7, 2) == pytest.approx(-2 * np.log(0.3))
    d2 = np.array([0.5, 2.0, chi2_radius_sq(0.7, 2), 5.0])
    inside = d2 <= chi2_radius_sq(0.7, 2)
    np.testing.assert_array_equal(chi2_tail(d2, 2) >= 1 - 0.7 - 1e-12, inside)
    assert np.all(np.diff(chi2_tail(d2, 2)) < 0)


def test_ellipse_geometry_and_outline():
    covariance = np.diag([4.0, 1.0])
    width, height, angle = ellipse_geometry(np.zeros(2), covariance, 0.5)
    radius = np.sqrt(chi2_radius_sq(0.5, 2))
    assert width == pytest.approx(2 * radius * 2.0)
    assert height == pytest.approx(2 * radius * 1.0)
    assert angle % 180 == pytest.approx(0.0, abs=1e-9)
    rotated = np.array([[1.0, 0.9], [0.9, 1.0]])
    assert ellipse_geometry(np.zeros(2), rotated, 0.5)[2] % 180 == pytest.approx(45.0)
    mean = np.array([1.0, -2.0])
    outline = ellipse_outline(mean, rotated, 0.9, n_points=50)
    d2 = mahalanobis_sq(outline, mean, np.linalg.inv(rotated))
    np.testing.assert_allclose(d2, chi2_radius_sq(0.9, 2))


def test_full_covariances_and_heaviest_component():
    assert full_covariances(np.array([1.0, 2.0]), "spherical", 2, 3).shape == (2, 3, 3)
    np.testing.assert_array_equal(
        full_covariances(np.array([[1.0, 2.0]]), "diag", 1, 2)[0], np.diag([1.0, 2.0])
    )
    assert full_covariances(np.eye(2), "tied", 3, 2).shape == (3, 2, 2)
    assert heaviest_component(np.array([0.3, 0.7])) == 1


def test_knn_radii_and_realism():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0]])
    np.testing.assert_allclose(knn_radii(points, 1), [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(knn_radii(points, 2), [3.0, 2.0, 3.0, 5.0])
    radii = knn_radii(points, 1)
    query = np.array([[0.5, 0.0], [6.0, 2.9], [20.0, 0.0], [3.0, 0.0]])
    scores = realism_scores(query, points, radii)
    # inside some ball exactly when the score is >= 1
    assert (scores >= 1).tolist() == [True, True, False, True]
    assert scores[3] > 1e6  # an exact copy


def test_filter_quality():
    truth = np.array([True, True, False, False])
    result = filter_quality(np.array([0.9, 0.4, 0.5, 0.1]), truth, np.array([1, 0, 1, 0], bool))
    assert result["auroc"] == pytest.approx(0.75)
    assert result["pass_precision"] == 0.5 and result["pass_recall"] == 0.5
    assert result["reject_precision"] == 0.5 and result["reject_recall"] == 0.5
    assert filter_quality(np.array([1.0, 0.0]), np.array([True, False]))["auroc"] == 1.0
    with pytest.raises(InputError, match="should pass and ones"):
        filter_quality(np.ones(3), np.ones(3, bool))
    with pytest.raises(InputError, match="must be equal"):
        filter_quality(np.ones(3), np.array([True, False]))


def test_pca_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    from brain.filters.reduce import apply_pca, fit_pca

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 10))
    ours = fit_pca(X, 3)
    reference = PCA(3).fit(X)
    np.testing.assert_allclose(ours.explained_variance, reference.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(
        np.abs(apply_pca(ours, X)), np.abs(reference.transform(X)), atol=1e-8
    )
    assert fit_pca(X, None) is None and fit_pca(X, 10) is None and fit_pca(X, 50) is None
    np.testing.assert_array_equal(apply_pca(None, X), X)
