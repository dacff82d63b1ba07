"""What a "helps" rests on: a synthetic arm's gain must beat oversampling and not rest on copies.

A comparison's verdict comes from the paired CI of the F1 difference
(:func:`brain.stats.verdict`). For an arm that trains on synthetic samples (``all``,
``filtered``, ``random-matched``) a ``helps`` stands only when

1. fewer than :data:`COPY_SHARE_LIMIT` of the samples the arm draws from are copies (tagged
   ``near-copy`` by the SSIM step or ``leak``, or rejected by the filter's near-copy gate),
   else it reads :data:`COPIES`: copies of real training images are not new data;
2. the same arm also beats the ``oversampled`` arm (as many copies of real rare train images),
   else it reads :data:`OVERSAMPLING`: any extra rare-labelled image raises recall.

Every line also says how many rare test samples it rests on, with a caveat under
:data:`FEW_RARE_TEST`.
"""

from __future__ import annotations

from typing import Any

from curation.experiment.cells import SYNTHETIC_ARMS

COPY_SHARE_LIMIT = 0.1
"""The share of copies among an arm's samples from which its "helps" does not stand."""
FEW_RARE_TEST = 20
"""Rare test samples under which a verdict carries a caveat (one sample moves recall by more
than 5 points)."""
COPIES = "no evidence (copies)"
OVERSAMPLING = "no evidence (oversampling does as well)"


def rare_test_count(row: dict[str, Any]) -> int | None:
    """The rare test samples of a table row (true positives + false negatives)."""
    counts = row.get("counts") or []
    return counts[0]["tp"] + counts[0]["fn"] if counts else None


def few_test_caveat(n_rare: int | None) -> str | None:
    """The caveat for a verdict resting on fewer than :data:`FEW_RARE_TEST` rare test samples."""
    if n_rare is None or n_rare >= FEW_RARE_TEST:
        return None
    return (
        f"{n_rare} rare test samples (fewer than {FEW_RARE_TEST}): one sample moves recall by "
        f"{1 / max(n_rare, 1):.0%}"
    )


def qualify(
    line: dict[str, Any],
    row: dict[str, Any],
    base: dict[str, Any],
    versus_oversampled: dict[str, Any] | None,
) -> None:
    """Add to a verdict ``line`` (of ``row`` against ``base``) what it rests on, and downgrade a
    synthetic arm's ``helps`` that rests on copies or does no better than oversampling.

    Args:
        line: the verdict line (``verdict`` is replaced; the original stays as
            ``raw_verdict``).
        row, base: the table rows compared.
        versus_oversampled: the comparison of ``row`` with its ``oversampled`` arm (``None``:
            not run).
    """
    line["raw_verdict"] = line["verdict"]
    line["n_rare_test"] = rare_test_count(row)
    line["caveat"] = few_test_caveat(line["n_rare_test"])
    if row["arm"] not in SYNTHETIC_ARMS:
        return
    share = row.get("copy_share")
    line["copy_share"] = share
    if versus_oversampled is not None and "verdict" in versus_oversampled:
        line["vs_oversampled"] = {
            "verdict": versus_oversampled["verdict"],
            "mean_diff": versus_oversampled["mean_diff"],
            "ci": [versus_oversampled["ci_low"], versus_oversampled["ci_high"]],
        }
    if line["verdict"] != "helps" or base["arm"] == "oversampled":
        return
    if share is None or share >= COPY_SHARE_LIMIT:
        line["verdict"] = COPIES
    elif line.get("vs_oversampled", {}).get("verdict") != "helps":
        line["verdict"] = OVERSAMPLING


def describe_basis(line: dict[str, Any]) -> str:
    """``; vs oversampled F1 +0.010 [-0.020, +0.040] (no evidence); copies 0% of its samples;
    caveat: ...`` (empty for lines with nothing to add)."""
    parts = []
    versus = line.get("vs_oversampled")
    if versus is not None:
        parts.append(
            f"vs oversampled F1 {versus['mean_diff']:+.3f} "
            f"[{versus['ci'][0]:+.3f}, {versus['ci'][1]:+.3f}] ({versus['verdict']})"
        )
    if line.get("copy_share") is not None:
        parts.append(f"copies {line['copy_share']:.0%} of its samples")
    if line.get("raw_verdict") not in (None, line["verdict"]):
        parts.append(f"the CI alone says {line['raw_verdict']}")
    if line.get("caveat"):
        parts.append(f"caveat: {line['caveat']}")
    return "".join(f"; {part}" for part in parts)
