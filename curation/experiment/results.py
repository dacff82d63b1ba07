"""The study's results collected from its stored train runs: one row per cell (rare-class P, R,
F1, AUC per seed, with mean +- std), paired comparisons with the real baseline and their
verdicts. :mod:`curation.experiment.report` renders them."""

from __future__ import annotations

from typing import Any

import numpy as np

from brain.metrics import mean_std
from brain.stats import (
    count_intervals,
    detectable_difference,
    paired_comparison,
    verdict,
)
from curation.experiment.cells import (
    COMPARISONS,
    SYNTHETIC_ARMS,
    Cell,
    comparison_pairs,
)
from curation.experiment.config import ExperimentConfig
from curation.experiment.verdicts import describe_basis, qualify
from curation.experiment.views import copy_shares
from curation.runs.train.fit import TRAIN

METRICS = ("precision", "recall", "f1", "auc")


def _row(dataset, cell: Cell, seeds: int) -> dict[str, Any]:
    runs = [cell.seed_run(seed) for seed in range(seeds)] if cell.per_seed else [cell.run]
    per_seed, n_train, n_synthetic, warnings = [], [], [], []
    for run in runs:
        config, results = TRAIN.load(dataset, run)
        per_seed += results.per_seed
        warnings += results.warnings
        n_train.append(results.n_train)
        n_synthetic.append(results.n_train_synthetic + results.n_train_oversampled)
    row = {
        "run": cell.run,
        "runs": runs,
        "data": cell.data_label,
        "arm": cell.arm,
        "generator": cell.generator,
        "filtered": cell.filtered,
        "augment": cell.augment,
        "seeds": [m["seed"] for m in per_seed],
        "n_train": n_train[0],
        "n_train_synthetic": n_synthetic[0],
    }
    for metric in METRICS:
        values = [m.get(metric) for m in per_seed]
        row[metric] = {**mean_std(values), "values": values}
    rare = config.classes.index(config.rare_class)
    row["counts"] = [_rare_counts(m["confusion"], rare) for m in per_seed]
    row.update(count_intervals(row["counts"]))
    row["at_specificity"] = at_specificity_summary([m.get("at_specificity") for m in per_seed])
    row["warnings"] = sorted(set(warnings))
    row["predictions_field"] = results.predictions_field
    row["classes"] = config.classes
    row["rare_class"] = config.rare_class
    return row


def _rare_counts(confusion: list[list[int]], rare: int) -> dict[str, int]:
    """True positives, false positives, false negatives and true negatives of the rare
    class."""
    matrix = np.asarray(confusion)
    tp = int(matrix[rare, rare])
    fp, fn = int(matrix[:, rare].sum()) - tp, int(matrix[rare].sum()) - tp
    return {"tp": tp, "fp": fp, "fn": fn, "tn": int(matrix.sum()) - tp - fp - fn}


def at_specificity_summary(points: list[dict | None]) -> dict[str, Any] | None:
    """Recall and test specificity at the val-chosen threshold (per seed, see
    :func:`brain.metrics.recall_at_specificity`) as mean +- std over seeds, with the target and
    the per-seed points; ``None`` when the runs predate it."""
    if not points or any(p is None for p in points):
        return None
    summary: dict[str, Any] = {"target": points[0]["target"], "per_seed": points}
    for name in ("recall", "test_specificity"):
        values = [p[name] for p in points]
        summary[name] = {**mean_std(values), "values": values}
    return summary


def compare_rows(rows: list[dict[str, Any]], experiment: str = "") -> tuple[list, list]:
    """The paired comparisons (see :data:`~curation.experiment.cells.COMPARISONS`) between
    table rows, and their verdict lines."""
    by_cell = {Cell(experiment, r["generator"], r["arm"], r["augment"]): r for r in rows}
    comparisons = [_compare(by_cell[a], by_cell[b]) for a, b in comparison_pairs(list(by_cell))]
    oversampled = {cell.run: cell.sibling("oversampled").run for cell in by_cell}
    return comparisons, _verdict_lines(comparisons, {r["run"]: r for r in rows}, oversampled)


def _compare(row: dict, base: dict) -> dict[str, Any]:
    """Paired comparison of two rows over their common seeds, on F1 and AUC: mean difference,
    tests, CI (bootstrap and t), the smallest difference the design detects, and a verdict."""
    result: dict[str, Any] = {"run": row["run"], "baseline": base["run"], "metric": "f1"}
    for metric in ("f1", "auc"):
        by_seed = dict(zip(base["seeds"], base[metric]["values"], strict=True))
        pairs = [
            (v, by_seed[s])
            for s, v in zip(row["seeds"], row[metric]["values"], strict=True)
            if s in by_seed and v is not None and by_seed[s] is not None
        ]
        if len(pairs) < 2:
            continue
        treated, baseline = zip(*pairs, strict=True)
        stats = paired_comparison(treated, baseline)
        stats["detectable"] = detectable_difference(treated, baseline)
        stats["verdict"] = verdict(stats["ci_low"], stats["ci_high"])
        if metric == "f1":
            result.update(stats)
        else:
            result["auc"] = stats
    return result


def _verdict_lines(
    comparisons: list[dict], rows: dict[str, dict], oversampled: dict[str, str]
) -> list[dict[str, Any]]:
    """One verdict per comparison (``helps`` / ``no evidence`` / ``hurts`` from the paired CI of
    the rare-class F1 difference, :func:`brain.stats.paired_comparison`, with the AUC's beside
    it), qualified by what it rests on (:func:`curation.experiment.verdicts.qualify`: a
    synthetic arm's ``helps`` must beat oversampling and not rest on copies; the comparison's
    own ``verdict`` is qualified too); the comparisons of the first two :data:`COMPARISONS`
    (filtered vs random-matched, filtered vs real) are the headline.

    Args:
        oversampled: each row's run -> the run of its ``oversampled`` arm.
    """
    by_pair = {(c["run"], c["baseline"]): c for c in comparisons}
    lines = []
    for c in comparisons:
        if "verdict" not in c:
            continue
        arms = (rows[c["run"]]["arm"], rows[c["baseline"]]["arm"])
        auc = c.get("auc") or {}
        lines.append(
            {
                "comparison": f"{rows[c['run']]['data']} vs {rows[c['baseline']]['data']}",
                "arms": list(arms),
                "headline": arms in COMPARISONS[:2],
                "verdict": c["verdict"],
                "mean_diff": c["mean_diff"],
                "ci": [c["ci_low"], c["ci_high"]],
                "detectable": c["detectable"],
                "n_pairs": c["n_pairs"],
                "auc_verdict": auc.get("verdict"),
                "auc_mean_diff": auc.get("mean_diff"),
            }
        )
        row = rows[c["run"]]
        versus = by_pair.get((c["run"], oversampled.get(c["run"])))
        qualify(lines[-1], row, rows[c["baseline"]], versus)
    for line, c in zip(lines, [c for c in comparisons if "verdict" in c], strict=True):
        c["raw_verdict"], c["verdict"] = c["verdict"], line["verdict"]
    return lines


def format_verdict(line: dict[str, Any]) -> str:
    """``helps: real + bbdm (filtered) vs real: F1 +0.052 [+0.010, +0.090] ...``."""
    auc = ""
    if line.get("auc_verdict") is not None:
        auc = f"; AUC {line['auc_mean_diff']:+.3f} ({line['auc_verdict']})"
    return (
        f"{line['verdict']}: {line['comparison']}: F1 {line['mean_diff']:+.3f} "
        f"[{line['ci'][0]:+.3f}, {line['ci'][1]:+.3f}], {line['n_pairs']} seeds, "
        f"detectable {line['detectable']:.3f}{auc}{describe_basis(line)}"
    )


def collect_results(
    dataset,
    config: ExperimentConfig,
    cells: list[Cell],
    counts: dict[str, dict[str, int]],
    filter_result: dict[str, Any],
    generation: dict[str, dict],
) -> dict[str, Any]:
    """Read every cell's stored run on ``dataset`` and compare it with its real baseline
    (``filter_result``: the filter run's results as stored)."""
    rows = {cell.run: _row(dataset, cell, config.seeds) for cell in cells}
    shares = copy_shares(dataset, config) if config.generators else {}
    for cell in cells:
        if cell.arm in SYNTHETIC_ARMS:
            rows[cell.run]["copy_share"] = shares[cell.generator][cell.arm]
    comparisons, verdicts = compare_rows(list(rows.values()), config.name)
    return {
        "experiment": config.name,
        "dataset": config.dataset,
        "seeds": config.seeds,
        "tables": list(rows.values()),
        "comparisons": comparisons,
        "verdicts": verdicts,
        "filter_counts": counts,
        "filter": {k: v for k, v in filter_result.items() if not isinstance(v, (list, dict))},
        "filter_files": {k: v for k, v in filter_result.items() if k.endswith(("_png", "plots"))},
        "calibration": filter_result.get("calibration"),
        "scorecard": filter_result.get("scorecard") or {},
        "reasons": filter_result.get("reasons") or {},
        "filter_warnings": filter_result.get("warnings") or [],
        "generation": {
            name: {k: report.get(k) for k in ("method", "added", "total", "trained_steps")}
            for name, report in generation.items()
        },
    }
