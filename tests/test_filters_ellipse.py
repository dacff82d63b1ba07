"""``umap_gmm`` and ``gmm_full`` on blobs where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from _filter_blobs import make_blobs

from brain.errors import InputError
from brain.filters import GmmFullFilter, UmapGmmFilter
from brain.filters.plots import diagnostic, plane_ellipses, plane_points

BLOBS = make_blobs()


@pytest.fixture(scope="module")
def umap_filter() -> UmapGmmFilter:
    return UmapGmmFilter(n_epochs=100, random_state=0).fit(BLOBS.real, BLOBS.rare)


@pytest.fixture(scope="module")
def full_filter() -> GmmFullFilter:
    return GmmFullFilter(pca_components=4).fit(BLOBS.real, BLOBS.rare)


@pytest.fixture(params=["umap", "full"])
def fitted(request, umap_filter, full_filter):
    return umap_filter if request.param == "umap" else full_filter


def test_near_points_outscore_far_and_minor_cluster_points(fitted):
    near, far, minor = (fitted.score_samples(p) for p in (BLOBS.near, BLOBS.far, BLOBS.minor))
    for scores in (near, far, minor):
        assert ((scores >= 0) & (scores <= 1)).all()
    assert near.min() > max(far.max(), minor.max())
    # at a generous level every near point passes; the far and minor ones never do
    assert fitted.decide(BLOBS.near, level=0.99).mean() >= 0.9
    for probes in (BLOBS.far, BLOBS.minor):
        assert not fitted.decide(probes, level=0.999).any()


def test_near_points_pass_at_the_default_level():
    full = GmmFullFilter(pca_components=4).fit(BLOBS.real, BLOBS.rare)
    assert full.decide(BLOBS.near).mean() >= 0.9
    # umap-learn's transform (SGD after placement) pushes new points towards the rim of their
    # cluster; placed at the weighted mean of their neighbours, central points pass
    placed = UmapGmmFilter(transform_epochs=0).fit(BLOBS.real, BLOBS.rare)
    assert placed.decide(BLOBS.near).mean() >= 0.9
    assert not placed.decide(BLOBS.far).any() and not placed.decide(BLOBS.minor).any()


def test_default_level_is_the_heaviest_component_weight(fitted):
    weights = fitted.mixture_.weights_
    assert fitted.component_ == int(np.argmax(weights))
    assert fitted.default_level_ == pytest.approx(weights.max())
    assert fitted.resolve_level() == pytest.approx(0.7, abs=0.05)  # 70% of rare points
    assert fitted.threshold() == pytest.approx(1 - weights.max())


def test_higher_level_passes_more(fitted):
    probes = np.vstack([BLOBS.near, BLOBS.minor, BLOBS.far, BLOBS.real[BLOBS.rare]])
    scores = fitted.score_samples(probes)
    previous = np.zeros(len(probes), bool)
    counts = []
    for level in (0.05, 0.3, 0.6, 0.9, 0.999):
        passed = fitted.decide_scores(scores, level)
        assert (passed >= previous).all()  # nested: whatever passed still passes
        previous = passed
        counts.append(passed.sum())
    assert counts[0] < counts[-1]


def test_level_semantics_match_the_chi_square_ellipse(fitted):
    points = fitted.transform(BLOBS.near)
    d2 = fitted.distance_sq_transformed(points)
    from scipy.stats import chi2

    level = 0.5
    np.testing.assert_array_equal(
        fitted.decide(BLOBS.near, level=level), d2 <= chi2.ppf(level, fitted.dof_)
    )


def test_level_argument_overrides_default():
    flt = GmmFullFilter(pca_components=4).fit(BLOBS.real, BLOBS.rare)
    assert flt.resolve_level(0.999) == 0.999
    assert flt.decide(BLOBS.minor, level=0.999).mean() < 0.5


def test_umap_filter_exposes_its_plane(umap_filter):
    assert umap_filter.embedding_.shape == (len(BLOBS.real), 2)
    assert umap_filter.fit_points_ is umap_filter.embedding_
    assert umap_filter.pca_ is None  # 12-d input, 50 PCA components asked
    assert umap_filter.transform(BLOBS.far).shape == (40, 2)
    assert umap_filter.covariances_.shape == (2, 2, 2)


def test_plots_draw_the_umap_filters_own_plane_and_mixture(umap_filter):
    output = umap_filter.evaluate(BLOBS.near)
    real, new = plane_points(umap_filter, BLOBS.real, BLOBS.near, output)
    assert real is umap_filter.embedding_ and new is output.points
    _, projected = plane_points(umap_filter, BLOBS.real, BLOBS.near)
    np.testing.assert_array_equal(projected, umap_filter.transform(BLOBS.near))
    ellipses = plane_ellipses(umap_filter)
    assert ellipses.means.shape == (2, 2) and ellipses.covariances.shape == (2, 2, 2)
    assert ellipses.chosen == umap_filter.component_
    np.testing.assert_array_equal(ellipses.weights, umap_filter.mixture_.weights_)


def test_plots_lay_out_a_seeded_umap_for_filters_without_a_plane(full_filter):
    first = plane_points(full_filter, BLOBS.real, BLOBS.far, random_state=3)
    again = plane_points(full_filter, BLOBS.real, BLOBS.far, random_state=3)
    assert first[0].shape == (len(BLOBS.real), 2) and first[1].shape == (len(BLOBS.far), 2)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert plane_ellipses(full_filter) is None


def test_density_diagnostic_cuts_where_the_filter_decides(fitted):
    probes = np.vstack([BLOBS.near, BLOBS.minor, BLOBS.far])
    output = fitted.evaluate(probes)
    np.testing.assert_array_equal(output.scores, fitted.score_samples(probes))
    cut = diagnostic(fitted, output, 0.6)
    assert cut.log_scale and cut.real.shape == (len(BLOBS.real),)
    assert cut.threshold == fitted.radius_sq(0.6)
    np.testing.assert_array_equal(cut.values <= cut.threshold, fitted.decide(probes, level=0.6))
    with pytest.raises(ValueError, match="with points"):
        diagnostic(fitted, type(output)(output.scores))


def test_seeded_runs_are_identical():
    a = UmapGmmFilter(n_epochs=60, random_state=5).fit(BLOBS.real, BLOBS.rare)
    b = UmapGmmFilter(n_epochs=60, random_state=5).fit(BLOBS.real, BLOBS.rare)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    np.testing.assert_array_equal(a.score_samples(BLOBS.near), b.score_samples(BLOBS.near))
    c = GmmFullFilter(random_state=1).fit(BLOBS.real, BLOBS.rare)
    d = GmmFullFilter(random_state=1).fit(BLOBS.real, BLOBS.rare)
    np.testing.assert_array_equal(c.score_samples(BLOBS.far), d.score_samples(BLOBS.far))


@pytest.mark.slow  # umap-learn compiles its kernels in every new process (20-40 s on 2 cores)
def test_umap_learn_backend_agrees_on_clear_cases():
    flt = UmapGmmFilter(backend="umap-learn", pca_components=None, n_epochs=100, random_state=0)
    flt.fit(BLOBS.real, BLOBS.rare)
    assert flt.decide(BLOBS.near, level=0.99).mean() >= 0.9
    assert not flt.decide(BLOBS.far, level=0.999).any()
    assert not flt.decide(BLOBS.minor, level=0.999).any()


@pytest.mark.parametrize("cls", [UmapGmmFilter, GmmFullFilter])
def test_bad_input_raises(cls):
    real, rare = BLOBS.real, BLOBS.rare
    one_rare = np.zeros_like(rare)
    one_rare[np.flatnonzero(rare)[0]] = True
    with pytest.raises(InputError, match="need at least 2"):
        cls().fit(real, one_rare)
    same = real.copy()
    same[rare] = real[rare][0]
    with pytest.raises(InputError, match="degenerate covariance"):
        cls().fit(same, rare)
    with pytest.raises(InputError, match="NaN"):
        cls().fit(np.where(np.eye(*real.shape, dtype=bool), np.nan, real), rare)
    with pytest.raises(InputError, match="missing"):
        cls().fit([*list(real[:-1]), None], rare)


def test_collinear_rare_points_are_degenerate_in_full_space():
    rng = np.random.default_rng(0)
    line = rng.normal(size=(50, 1)) * np.ones((1, 3))
    other = rng.normal(size=(50, 3)) + 10
    with pytest.raises(InputError, match="degenerate covariance"):
        GmmFullFilter(pca_components=None).fit(np.vstack([line, other]), np.r_[[1] * 50, [0] * 50])


def test_unknown_options_raise():
    with pytest.raises(InputError, match="unknown UMAP backend"):
        UmapGmmFilter(backend="gpu").fit(BLOBS.real, BLOBS.rare)
    with pytest.raises(InputError, match="unknown covariance type"):
        GmmFullFilter(gmm_covariance="banana").fit(BLOBS.real, BLOBS.rare)
    with pytest.raises(InputError, match="more than n_neighbors"):
        UmapGmmFilter().fit(BLOBS.real[:10], np.r_[[1] * 5, [0] * 5])
