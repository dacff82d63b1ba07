"""Statistics for comparing training conditions over seeds: paired tests and bootstrap intervals
(means and standard deviations come from :func:`brain.metrics.mean_std`); and intervals over the
test samples of one arm's recall and F1, from its confusion counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def wilson_interval(successes: float, n: float, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (e.g. recall: true positives
    out of the rare test samples).

    Unlike the normal (Wald) interval it stays inside ``[0, 1]`` and is not empty at 0 or
    ``n`` successes, which matters for the few rare samples of a test split. ``successes`` may
    be fractional (the mean over seeds of counts on the same test samples).

    Raises:
        ValueError: ``n`` not positive or ``successes`` outside ``[0, n]``.
    """
    from scipy import stats

    if not n > 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def f1_interval(
    tp: float,
    fp: float,
    fn: float,
    tn: float,
    *,
    n_boot: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the rare-class F1 over the test samples, from the
    confusion counts alone.

    F1 depends on the samples only through the counts (``2 tp / (2 tp + fp + fn)``, 0 when
    ``tp`` is 0), so resampling the ``N = tp + fp + fn + tn`` test samples with replacement is
    a multinomial draw of ``N`` over the four cells with probabilities ``count / N``: the same
    bootstrap as one over the samples, without them. Counts may be fractional (the mean over
    seeds); ``N`` is then rounded.

    Raises:
        ValueError: a negative count, or no sample.
    """
    counts = np.array([tp, fp, fn, tn], dtype=float)
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"need non-negative counts of at least one sample, got {counts}")
    n = max(1, round(float(counts.sum())))
    rng = np.random.default_rng(seed)
    drawn = rng.multinomial(n, counts / counts.sum(), size=n_boot)
    denominator = 2 * drawn[:, 0] + drawn[:, 1] + drawn[:, 2]
    f1 = np.divide(2 * drawn[:, 0], denominator, out=np.zeros(n_boot), where=denominator > 0)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(f1, [alpha, 1 - alpha])
    return float(low), float(high)


def count_intervals(
    counts: Sequence[Mapping[str, float]], *, confidence: float = 0.95
) -> dict[str, list[float] | None]:
    """Confidence intervals over the test samples of an arm's rare-class recall (Wilson) and
    F1 (count bootstrap, :func:`f1_interval`), at the mean over seeds of the confusion counts.

    Every seed is tested on the same samples, so averaging seeds does not add test samples:
    the interval is that of one classifier with the seeds' mean counts on this test split
    (test-sample uncertainty), to read beside the spread over seeds (training
    uncertainty).

    Args:
        counts: per seed, ``tp``, ``fp``, ``fn`` and ``tn`` of the rare class.
        confidence: the intervals' level.

    Returns:
        ``recall_ci`` and ``f1_ci`` as ``[low, high]`` (``None`` without rare test samples or
        without ``tn``, which older runs lack).
    """
    if not counts or any("tn" not in c for c in counts):
        return {"recall_ci": None, "f1_ci": None}
    mean = {k: float(np.mean([c[k] for c in counts])) for k in ("tp", "fp", "fn", "tn")}
    support = mean["tp"] + mean["fn"]
    if support <= 0:
        return {"recall_ci": None, "f1_ci": None}
    recall = wilson_interval(mean["tp"], support, confidence=confidence)
    f1 = f1_interval(mean["tp"], mean["fp"], mean["fn"], mean["tn"], confidence=confidence)
    return {"recall_ci": list(recall), "f1_ci": list(f1)}
