"""Filters that use both classes and realism: ``class_posterior``, ``realism``, ``combined``;
the fidelity scorecard and the val pass-rate calibration (arrays only, no FiftyOne)."""

from __future__ import annotations

import numpy as np
import pytest
from _filter_blobs import make_blobs

from brain.errors import InputError
from brain.filter_calibration import calibrate_pass_rate
from brain.filters import (
    ClassPosteriorFilter,
    CombinedFilter,
    NotFittedError,
    RealismFilter,
    make_filter,
)
from brain.filters.gaussians import cluster_labels, fit_tied_gaussians
from brain.filters.scorecard import fidelity_scorecard

BLOBS = make_blobs()
RNG = np.random.default_rng(5)
DIM = BLOBS.real.shape[1]
# unlike any real sample: far from every cluster, in a direction no class spreads along
NOISE = RNG.normal(size=(40, DIM)) * 0.3 + np.r_[0.0, 0.0, 25.0, np.zeros(DIM - 3)]
# the rare class's place, but also where a dense common-class cluster sits (see _overlap)
NEW = ("class_posterior", "realism", "combined")
ARRAY_ONLY = {"combined": {"realism": "embedding"}}  # no images here: realism in the embedding


def _overlap():
    """Real data where a common-class cluster sits exactly on the rare class's minor mode."""
    real = np.vstack([BLOBS.real, BLOBS.minor[:1] + RNG.normal(size=(300, DIM))])
    rare = np.r_[BLOBS.rare, np.zeros(300, bool)]
    return real, rare


@pytest.mark.parametrize("name", NEW)
def test_estimator_contract(name):
    flt = make_filter(name, **ARRAY_ONLY.get(name, {}))
    assert "level" not in flt.get_params()
    with pytest.raises(NotFittedError):
        flt.score_samples(BLOBS.near)
    assert flt.fit(BLOBS.real, BLOBS.rare) is flt
    scores = flt.score_samples(BLOBS.near)
    assert scores.shape == (len(BLOBS.near),) and np.isfinite(scores).all()
    again = make_filter(name, **ARRAY_ONLY.get(name, {})).fit(BLOBS.real, BLOBS.rare)
    np.testing.assert_array_equal(again.score_samples(BLOBS.near), scores)
    assert flt.threshold() == flt.threshold(flt.default_level_)
    assert flt.level_for_threshold(flt.threshold(0.7)) == pytest.approx(0.7)


def test_class_posterior_separates_the_classes_with_both_estimators():
    for estimator in ("gaussian", "knn"):
        flt = ClassPosteriorFilter(estimator=estimator, pca_components=None).fit(
            BLOBS.real, BLOBS.rare
        )
        assert flt.default_level_ == 0.5
        assert flt.decide(BLOBS.near).all(), estimator
        assert not flt.decide(BLOBS.far).any(), estimator
        # the light rare cluster is rare class too (unlike the ellipse filters)
        assert flt.decide(BLOBS.minor).mean() >= 0.9, estimator


def test_class_posterior_rejects_the_rare_mode_the_common_class_fills():
    real, rare = _overlap()
    flt = ClassPosteriorFilter(pca_components=None).fit(real, rare)
    # the rare class alone would accept these; with the common class modelled they are
    # no more likely rare than other
    assert flt.score_samples(BLOBS.minor).mean() < 0.5
    assert flt.decide(BLOBS.near).all()


def test_class_posterior_level_is_a_probability_threshold():
    flt = ClassPosteriorFilter().fit(BLOBS.real, BLOBS.rare)
    scores = flt.score_samples(np.vstack([BLOBS.near, BLOBS.far]))
    assert ((scores >= 0) & (scores <= 1)).all()
    assert flt.decide_scores(scores, 0.9).sum() <= flt.decide_scores(scores, 0.1).sum()
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        flt.decide(BLOBS.near, level=1.5)
    with pytest.raises(InputError, match="unknown estimator"):
        ClassPosteriorFilter(estimator="svm").fit(BLOBS.real, BLOBS.rare)


def test_fine_labels_make_one_cluster_each():
    fine = np.where(BLOBS.rare, "r", np.where(BLOBS.real[:, 1] > 0, "a", "b"))
    flt = ClassPosteriorFilter(pca_components=None).fit(BLOBS.real, BLOBS.rare, fine_labels=fine)
    assert flt.n_clusters_ == (1, 2)
    with pytest.raises(InputError, match="single class"):
        ClassPosteriorFilter().fit(BLOBS.real, BLOBS.rare, fine_labels=["x"] * len(BLOBS.real))
    with pytest.raises(InputError, match="one value per sample"):
        ClassPosteriorFilter().fit(BLOBS.real, BLOBS.rare, fine_labels=["x", "y"])


@pytest.mark.parametrize("method", ["mahalanobis", "knn"])
def test_realism_passes_real_like_samples_of_any_class_and_rejects_noise(method):
    flt = RealismFilter(method=method, pca_components=None).fit(BLOBS.real, BLOBS.rare)
    assert flt.default_level_ == 0.99
    for probes in (BLOBS.near, BLOBS.far, BLOBS.minor):
        assert flt.decide(probes).mean() >= 0.9, method
    assert not flt.decide(NOISE).any(), method
    # the level is the share of real samples that pass (new ones from the same distribution)
    fresh = flt.score_samples(make_blobs(seed=1).real)
    for level in (0.5, 0.9):
        assert flt.decide_scores(fresh, level).mean() == pytest.approx(level, abs=0.06)


def test_combined_gives_a_reason_for_every_rejection():
    real, rare = _overlap()
    flt = CombinedFilter(realism="embedding", pca_components=None).fit(real, rare)
    typical = real[rare][np.argsort(np.linalg.norm(real[rare], axis=1))[:10]]  # heavy mode
    copies = typical * (1 + 1e-6)
    probes = np.vstack([BLOBS.near, BLOBS.far, NOISE, copies])
    kinds = np.repeat(["near", "far", "noise", "copy"], [40, 40, 40, 10])
    scores, parts = flt.score_samples(probes), flt.parts(probes)
    assert set(parts) == {"realism", "rare_prob", "copy_ratio"}
    reasons = flt.reasons(scores, parts)
    assert (reasons[kinds == "near"] == "pass").mean() >= 0.85
    # real samples of the other class: all rejected, as other-class unless they are among the
    # least typical real samples (the 1 - level share that fails realism by design)
    assert (reasons[kinds == "far"] != "pass").all()
    assert (reasons[kinds == "far"] == "other-class").mean() >= 0.85
    assert (reasons[kinds == "noise"] == "unrealistic").all()
    assert (reasons[kinds == "copy"] == "near-copy").all()
    np.testing.assert_array_equal(reasons == "pass", flt.decide_scores(scores))
    off = CombinedFilter(realism="embedding", pca_components=None, copy_ratio=0.0).fit(real, rare)
    assert off.decide(copies).all()


def test_combined_bad_parameters():
    with pytest.raises(InputError, match="min_posterior"):
        CombinedFilter(min_posterior=1.0).fit(BLOBS.real, BLOBS.rare)
    with pytest.raises(InputError, match="pass image_features"):
        CombinedFilter().fit(BLOBS.real, BLOBS.rare)
    with pytest.raises(InputError, match="unknown realism"):
        CombinedFilter(realism="pixels").fit(BLOBS.real, BLOBS.rare)
    flt = CombinedFilter(realism="embedding").fit(BLOBS.real, BLOBS.rare)
    with pytest.raises(InputError, match="between 0 and 1"):
        flt.decide(BLOBS.near, level=1.0)


def test_combined_judges_image_realism_on_image_statistics():
    stats = RNG.normal(size=(len(BLOBS.real), 7))
    flt = CombinedFilter().fit(BLOBS.real, BLOBS.rare, image_features=stats)
    plausible = RNG.normal(size=(len(BLOBS.near), 7))
    damaged = plausible + 6.0  # rare-looking embeddings, but images unlike any real one
    assert flt.decide(BLOBS.near, image_features=plausible).mean() >= 0.85
    assert not flt.decide(BLOBS.near, image_features=damaged).any()
    parts = flt.parts(BLOBS.near, image_features=damaged)
    reasons = flt.reasons(flt.score_samples(BLOBS.near, image_features=damaged), parts)
    assert set(reasons) == {"unrealistic"}
    with pytest.raises(InputError, match="score them too"):
        flt.score_samples(BLOBS.near)
    with pytest.raises(InputError, match="columns"):
        flt.score_samples(BLOBS.near, image_features=plausible[:, :3])
    both = CombinedFilter(realism="both").fit(BLOBS.real, BLOBS.rare, image_features=stats)
    assert set(both.realism_) == {"image", "embedding"}
    assert not both.decide(NOISE, image_features=plausible).any()  # unrealistic embeddings


def test_few_rare_samples_still_fit():
    few = np.zeros_like(BLOBS.rare)
    few[np.flatnonzero(BLOBS.rare)[:3]] = True
    for name in NEW:
        flt = make_filter(name, **ARRAY_ONLY.get(name, {})).fit(BLOBS.real, few)
        assert np.isfinite(flt.score_samples(BLOBS.near)).all()
    one = np.zeros_like(BLOBS.rare)
    one[np.flatnonzero(BLOBS.rare)[0]] = True
    with pytest.raises(InputError, match="need at least 2"):
        ClassPosteriorFilter().fit(BLOBS.real, one)


def test_tied_gaussians_posterior_matches_bayes_rule():
    shift = np.array([3.0, 0.0])
    points = np.vstack([RNG.normal(size=(500, 2)), RNG.normal(size=(500, 2)) + shift])
    rare = np.r_[np.zeros(500, bool), np.ones(500, bool)]
    clusters, cluster_rare = cluster_labels(points, rare, rare_clusters=1, other_clusters=1)
    model = fit_tied_gaussians(points, clusters, cluster_rare)
    # equal priors, unit covariance: the posterior at the midpoint is 1/2, then logistic
    assert model.rare_posterior(np.array([[1.5, 0.0]]))[0] == pytest.approx(0.5, abs=0.05)
    assert model.rare_posterior(np.array([[3.0, 0.0]]))[0] > 0.95


def test_scorecard_on_known_cases():
    real = RNG.normal(size=(400, 8))
    same = fidelity_scorecard(real, RNG.normal(size=(400, 8)))
    assert 0.8 <= same["precision"] <= 1.0 and 0.8 <= same["recall"] <= 1.0
    assert 0.7 <= same["density"] <= 1.3 and same["coverage"] >= 0.8
    assert 0.3 <= same["authenticity"] <= 0.7
    collapsed = fidelity_scorecard(real, RNG.normal(size=(400, 8)) * 0.1)
    assert collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.3
    shifted = fidelity_scorecard(real, RNG.normal(size=(400, 8)) + 6.0)
    assert shifted["precision"] < 0.05 and shifted["density"] < 0.05
    copies = fidelity_scorecard(real, real[:100] + 1e-6)
    assert copies["authenticity"] == 0.0
    with pytest.raises(InputError, match="more than k"):
        fidelity_scorecard(real[:3], real)


def test_val_calibration_reaches_the_target_share():
    flt = CombinedFilter(realism="embedding").fit(BLOBS.real, BLOBS.rare)
    val = np.vstack([BLOBS.near + 0.5 * RNG.normal(size=BLOBS.near.shape), BLOBS.far])
    val_rare = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    report = calibrate_pass_rate(flt, flt.score_samples(val), val_rare, target=0.95)
    assert report.val_rare_pass >= 0.95 and report.val_other_pass == 0.0
    assert report.n_val_rare == 40 and not report.warnings
    passed = flt.decide(val, level=report.level)
    assert passed[val_rare].mean() == report.val_rare_pass
    few = calibrate_pass_rate(flt, flt.score_samples(val[:3]), np.ones(3, bool))
    assert few.warnings and "3 real rare val" in few.warnings[0]
    for target in (0.0, 1.0, 1.5):
        with pytest.raises(InputError, match="target"):
            calibrate_pass_rate(flt, flt.score_samples(val), val_rare, target=target)
    with pytest.raises(InputError, match="no rare-class sample"):
        calibrate_pass_rate(flt, flt.score_samples(val), np.zeros(80, bool))


def test_unreachable_target_does_not_open_the_gate_to_everything():
    """Rare val samples that no level passes (scored 0 or below) are not aimed at: the level
    passes those that can pass, and a sample scored under all of them still fails."""
    flt = CombinedFilter(realism="embedding").fit(BLOBS.real, BLOBS.rare)
    scores = np.r_[np.linspace(0.5, 0.9, 16), -0.4, -0.2, -0.1, -0.3]  # 4 of 20 cannot pass
    rare = np.ones(20, bool)
    report = calibrate_pass_rate(flt, scores, rare, target=0.95)
    assert report.val_rare_pass == 0.8 and "can pass at any level" in report.warnings[0]
    # midway between the lowest passable score (0.5) and 0 (the next below, -0.1, can never
    # pass), not at the most permissive level (a threshold of ~0, where 0.1 would pass)
    assert report.threshold == pytest.approx(0.25)
    assert list(flt.decide_scores(np.array([0.1, 0.5]), report.level)) == [False, True]


def test_realism_ranked_against_the_rare_class_passes_its_level_of_it():
    """A rare class more spread than the common one is less typical of the data as a whole:
    ranked against all real samples, far fewer than the level's share of new rare samples pass;
    ranked against the rare ones (as the combined filter does), about that share does."""
    from brain.filters import RealismFilter

    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(400, 4)), rng.normal(size=(60, 4)) * 3 + 10])
    rare = np.r_[np.zeros(400, bool), np.ones(60, bool)]
    new_rare, far = rng.normal(size=(200, 4)) * 3 + 10, rng.normal(size=(200, 4)) * 3 + 40
    passed = {}
    for reference in ("all", "rare"):
        flt = RealismFilter(pca_components=None, rank_against=reference)
        flt.fit(X, rare)
        passed[reference] = flt.decide(new_rare, level=0.95).mean()
        assert not flt.decide(far, level=0.95).any()
    assert passed["rare"] >= 0.9 and passed["all"] <= passed["rare"] - 0.2
    few = rare & (np.cumsum(rare) <= 4)
    flt = RealismFilter(pca_components=None, rank_against="rare").fit(X, few)
    assert "only 4 rare" in flt.notes_[0]
    from brain.errors import InputError

    with pytest.raises(InputError, match="rank_against"):
        RealismFilter(rank_against="val").fit(X, rare)


def test_ellipse_filters_fall_back_to_what_few_rare_points_support():
    from brain.filters import GmmFullFilter

    for n_rare, components, covariance in ((7, 1, "full"), (3, 1, "diag"), (12, 2, "full")):
        few = np.zeros_like(BLOBS.rare)
        few[np.flatnonzero(BLOBS.rare)[:n_rare]] = True
        flt = GmmFullFilter(pca_components=2).fit(BLOBS.real, few)
        assert (flt.n_components_, flt.covariance_type_) == (components, covariance), n_rare
        assert bool(flt.notes_) == (n_rare < 8), flt.notes_
        assert np.isfinite(flt.score_samples(BLOBS.near)).all()
        # the heaviest weight is the default level; one component (weight 1): its 95% ellipse
        assert flt.default_level_ == (0.95 if components == 1 else flt.weight_)
        assert flt.decide(BLOBS.near).any()  # the default level is a valid one


def test_two_rare_val_samples_fall_back_to_the_default_level_and_noise_stays_out():
    """Real images and pure noise through the image statistics: with 2 rare val samples (one
    of them scored just above 0) the level is the filter's default, not one that lets noise
    through."""
    from brain.filters.image_stats import image_statistics
    from curation.demo import make_crop

    rare = np.r_[np.ones(30, bool), np.zeros(90, bool)]
    images = np.stack([make_crop(i, size=32, translocation=bool(r)) for i, r in enumerate(rare)])
    embeddings = np.where(rare[:, None], 0.0, 6.0) + RNG.normal(size=(len(rare), DIM))
    flt = CombinedFilter().fit(embeddings, rare, image_features=image_statistics(images))
    noise = RNG.integers(0, 256, size=(20, 32, 32, 3)).astype(np.uint8)
    noise_scores = flt.score_samples(
        RNG.normal(size=(20, DIM)), image_features=image_statistics(noise)
    )
    report = calibrate_pass_rate(flt, np.array([0.8, 0.004]), np.ones(2, bool), target=0.95)
    assert report.fallback == "few-val" and report.level == flt.default_level_
    assert "needs at least 20" in report.warnings[0]
    assert not flt.decide_scores(noise_scores, report.level).any()


def test_calibration_never_sets_a_threshold_below_the_filters_loosest():
    """20 rare val samples that ask for a threshold of 0.004: it is held at the loosest end of
    the filter's useful range (the default level's threshold for ``combined``)."""
    flt = CombinedFilter(realism="embedding").fit(BLOBS.real, BLOBS.rare)
    scores = np.r_[np.linspace(0.5, 0.9, 18), 0.008, 0.0]
    report = calibrate_pass_rate(flt, scores, np.ones(20, bool), target=0.95)
    assert report.fallback == "floor" and report.threshold == pytest.approx(0.05)
    assert "held there" in report.warnings[0]
    assert not flt.decide_scores(np.array([0.008, 0.04]), report.level).any()
