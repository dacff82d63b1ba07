"""A synthetic arm's "helps" must beat oversampling and not rest on copies (no database)."""

from __future__ import annotations

from curation.experiment.cells import Cell
from curation.experiment.results import compare_rows, format_verdict
from curation.experiment.verdicts import COPIES, OVERSAMPLING

SEEDS = [0, 1, 2, 3, 4]


def _row(arm: str, f1: list[float], *, copy_share: float | None = None, n_rare: int = 30):
    generator = None if arm in ("real", "class-weighted") else "gen"
    cell = Cell("study", generator, arm)
    row = {
        "run": cell.run,
        "generator": generator,
        "arm": arm,
        "augment": False,
        "data": cell.data_label,
        "seeds": SEEDS,
        "f1": {"values": f1},
        "auc": {"values": [0.8 + v / 10 for v in f1]},
        "counts": [{"tp": n_rare // 2, "fp": 3, "fn": n_rare - n_rare // 2, "tn": 100}] * 5,
    }
    if copy_share is not None:
        row["copy_share"] = copy_share
    return row


REAL = [0.50, 0.52, 0.48, 0.51, 0.49]
BETTER = [0.60, 0.63, 0.58, 0.62, 0.59]
BEST = [0.70, 0.72, 0.69, 0.71, 0.70]


def _verdict(rows, arms=("filtered", "real")):
    _, lines = compare_rows(rows, "study")
    return next(line for line in lines if tuple(line["arms"]) == arms)


def test_a_gain_that_comes_from_copies_reads_no_evidence_copies():
    rows = [
        _row("real", REAL),
        _row("filtered", BEST, copy_share=0.6),
        _row("oversampled", BETTER),
    ]
    line = _verdict(rows)
    assert line["raw_verdict"] == "helps" and line["verdict"] == COPIES
    assert line["vs_oversampled"]["verdict"] == "helps"
    text = format_verdict(line)
    assert text.startswith(COPIES) and "copies 60% of its samples" in text


def test_a_gain_oversampling_matches_reads_no_evidence_oversampling():
    rows = [
        _row("real", REAL),
        _row("filtered", BETTER, copy_share=0.0),
        _row("oversampled", [v + 0.001 for v in BETTER]),
    ]
    line = _verdict(rows)
    assert line["raw_verdict"] == "helps" and line["verdict"] == OVERSAMPLING
    assert "vs oversampled F1 -0.001" in format_verdict(line)
    # the oversampled arm's own gain over real is real copies: no synthetic verdict to qualify
    assert _verdict(rows, ("oversampled", "real"))["verdict"] == "helps"


def test_helps_stands_when_it_beats_oversampling_without_copies_and_says_so():
    rows = [
        _row("real", REAL, n_rare=12),
        _row("filtered", BEST, copy_share=0.05, n_rare=12),
        _row("oversampled", BETTER, n_rare=12),
    ]
    comparisons, lines = compare_rows(rows, "study")
    line = next(v for v in lines if tuple(v["arms"]) == ("filtered", "real"))
    assert line["verdict"] == "helps" and line["n_rare_test"] == 12
    assert "12 rare test samples (fewer than 20)" in format_verdict(line)
    # the comparisons table reads the qualified verdict too
    assert all(c["verdict"] == v["verdict"] for c, v in zip(comparisons, lines, strict=True))


def test_an_unknown_copy_share_does_not_stand_as_helps():
    rows = [_row("real", REAL), _row("filtered", BEST), _row("oversampled", BETTER)]
    assert _verdict(rows)["verdict"] == COPIES
