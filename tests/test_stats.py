import numpy as np
import pytest

from brain.metrics import mean_std
from brain.stats import (
    count_intervals,
    f1_interval,
    format_mean_std,
    paired_comparison,
    wilson_interval,
)


def test_mean_std_and_format():
    assert mean_std([0.8, 0.82, 0.84]) == pytest.approx({"mean": 0.82, "std": 0.02, "n": 3})
    assert format_mean_std([0.8, 0.82, 0.84]) == "0.82+-0.02"
    assert mean_std([0.5])["std"] == 0.0
    assert format_mean_std([None]) == "n/a"


def test_paired_comparison_detects_a_consistent_gain():
    rng = np.random.default_rng(0)
    base = rng.normal(0.75, 0.03, 10)
    better = base + 0.05 + rng.normal(0, 0.005, 10)
    result = paired_comparison(better, base)
    assert result["mean_diff"] == pytest.approx(np.mean(better - base))
    assert result["t_test_p"] < 0.001 and result["wilcoxon_p"] < 0.01
    assert 0.04 < result["ci_low"] < result["mean_diff"] < result["ci_high"] < 0.06


def test_paired_comparison_no_difference():
    scores = [0.7, 0.8, 0.75]
    result = paired_comparison(scores, scores)
    assert result["mean_diff"] == 0 and result["t_test_p"] == 1.0
    assert result["ci_low"] == result["ci_high"] == 0
    with pytest.raises(ValueError):
        paired_comparison([0.1], [0.2])


def test_two_seeds_that_agree_in_sign_are_not_evidence():
    """With two seeds the percentile bootstrap interval lies between the two differences, so it
    excludes 0 whenever they share a sign; the verdict's interval (the wider of bootstrap and
    paired t) does not."""
    from brain.stats import verdict

    result = paired_comparison([0.30, 0.10], [0.10, 0.05])  # differences +0.20 and +0.05
    assert result["boot_low"] > 0  # the bootstrap alone would say "helps"
    assert result["t_low"] < 0 < result["t_high"]
    assert (result["ci_low"], result["ci_high"]) == (result["t_low"], result["t_high"])
    assert verdict(result["ci_low"], result["ci_high"]) == "no evidence"


def test_wilson_interval_matches_known_values_and_stays_in_range():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    low, high = wilson_interval(0, 10)  # the Wald interval would be [0, 0]
    assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1)
    assert wilson_interval(7.5, 10)[0] < 0.75 < wilson_interval(7.5, 10)[1]  # a seed mean
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_f1_interval_from_counts_is_the_bootstrap_over_the_samples():
    """Resampling the confusion counts gives the interval of resampling the test samples."""
    tp, fp, fn, tn = 12, 5, 8, 75
    truth = np.array([1] * tp + [0] * fp + [1] * fn + [0] * tn, dtype=bool)
    guess = np.array([1] * tp + [1] * fp + [0] * fn + [0] * tn, dtype=bool)
    rng = np.random.default_rng(1)
    draws = rng.integers(0, len(truth), size=(10_000, len(truth)))
    t, g = truth[draws], guess[draws]
    f1 = 2 * (t & g).sum(1) / (2 * (t & g).sum(1) + (~t & g).sum(1) + (t & ~g).sum(1))
    expected = np.quantile(f1, [0.025, 0.975])
    low, high = f1_interval(tp, fp, fn, tn)
    assert (low, high) == pytest.approx(tuple(expected), abs=0.02)
    assert low < 2 * tp / (2 * tp + fp + fn) < high
    assert f1_interval(tp, fp, fn, tn) == (low, high)  # seeded
    assert f1_interval(0, 0, 5, 20) == (0.0, 0.0)
    with pytest.raises(ValueError):
        f1_interval(0, 0, 0, 0)


def test_count_intervals_use_the_seed_mean_counts():
    counts = [{"tp": 6, "fp": 2, "fn": 4, "tn": 88}, {"tp": 8, "fp": 4, "fn": 2, "tn": 86}]
    intervals = count_intervals(counts)
    assert intervals["recall_ci"] == pytest.approx(list(wilson_interval(7, 10)))
    assert intervals["f1_ci"] == pytest.approx(list(f1_interval(7, 3, 3, 87)))
    assert count_intervals([{"tp": 0, "fp": 3, "fn": 0, "tn": 9}]) == {
        "recall_ci": None,
        "f1_ci": None,
    }
    assert count_intervals([{"tp": 1, "fp": 0, "fn": 1}])["recall_ci"] is None  # no tn: old run
