"""Statistics for comparing training conditions over seeds: paired tests and bootstrap intervals
(means and standard deviations come from :func:`brain.metrics.mean_std`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from brain.metrics import mean_std


def format_mean_std(values: Sequence[float | None], digits: int = 2) -> str:
    """``"0.81+-0.04"`` as in the study's tables (``"n/a"`` when no value is defined)."""
    summary = mean_std(values)
    if summary["mean"] is None:
        return "n/a"
    return f"{summary['mean']:.{digits}f}+-{summary['std']:.{digits}f}"


def paired_comparison(
    treatment: Sequence[float],
    baseline: Sequence[float],
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Compare per-seed scores of a condition with the baseline trained on the same seeds.

    Returns the mean difference, a paired t-test p-value, a Wilcoxon signed-rank p-value (NaN
    when all differences are zero), the percentile bootstrap interval of the mean difference
    (resampling seed pairs: ``boot_low``, ``boot_high``), the paired t interval (``t_low``,
    ``t_high``) and ``ci_low``, ``ci_high``: the wider of the two. With few seeds the bootstrap
    interval is far too narrow (two seeds whose differences share a sign give an interval that
    excludes 0 whatever their spread), so the verdicts read the wider one.
    """
    from scipy import stats

    a, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError("need two equal-length sequences of at least two paired scores")
    diff = a - b
    if np.allclose(diff, diff[0]):
        t_p = 1.0 if diff[0] == 0 else 0.0
    else:
        t_p = float(stats.ttest_rel(a, b).pvalue)
    w_p = float("nan") if np.allclose(diff, 0) else float(stats.wilcoxon(diff).pvalue)
    rng = np.random.default_rng(seed)
    resampled = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    half = float(stats.t.ppf(1 - alpha, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    t_low, t_high = float(diff.mean()) - half, float(diff.mean()) + half
    return {
        "mean_diff": float(diff.mean()),
        "t_test_p": t_p,
        "wilcoxon_p": w_p,
        "ci_low": min(float(low), t_low),
        "ci_high": max(float(high), t_high),
        "boot_low": float(low),
        "boot_high": float(high),
        "t_low": t_low,
        "t_high": t_high,
        "n_pairs": len(diff),
    }


VERDICTS = ("helps", "no evidence", "hurts")


def verdict(ci_low: float, ci_high: float) -> str:
    """``helps`` when the confidence interval of the difference lies above 0, ``hurts`` when it
    lies below 0, else ``no evidence`` (which is not evidence of no effect: see
    :func:`detectable_difference`)."""
    if ci_low > 0:
        return "helps"
    if ci_high < 0:
        return "hurts"
    return "no evidence"


def detectable_difference(
    treatment: Sequence[float],
    baseline: Sequence[float],
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest mean difference a paired design of this many seeds detects with ``power``
    at two-sided level ``alpha``, from the observed spread of the paired differences:
    ``(t_{1-alpha/2} + t_{power}) * sd(diff) / sqrt(n)`` with ``n - 1`` degrees of freedom.

    NaN with fewer than two pairs; 0 when the differences do not vary.
    """
    from scipy import stats

    diff = np.asarray(treatment, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(diff)
    if n < 2:
        return float("nan")
    spread = float(np.std(diff, ddof=1))
    quantiles = stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)
    return float(quantiles * spread / np.sqrt(n))
