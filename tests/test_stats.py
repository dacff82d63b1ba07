import numpy as np
import pytest

from brain.metrics import mean_std
from brain.stats import format_mean_std, paired_comparison


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
