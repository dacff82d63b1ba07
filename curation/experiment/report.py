"""The study's results: tables like the reference study's (rare-class P, R, F1, AUC as mean +- std
over seeds), filter counts, paired comparisons with the real baseline, figures, ``report.md``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from fiftyone import ViewField as F

from brain.metrics import mean_std
from brain.stats import detectable_difference, format_mean_std, paired_comparison, verdict
from curation.datasets import open_dataset
from curation.experiment.cells import COMPARISONS, Cell, comparison_pairs, filter_key
from curation.experiment.config import ExperimentConfig
from curation.experiment.figures import plot_roc_pr, plot_ssim_densities, sample_grid
from curation.runs.records import load_run
from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, SYNTHETIC
from curation.tags import pass_tag, reject_tag

METRICS = ("precision", "recall", "f1", "auc")
GRID_SIZE = 24


def _row(dataset, cell: Cell, seeds: int) -> dict[str, Any]:
    runs = [cell.seed_run(seed) for seed in range(seeds)] if cell.per_seed else [cell.run]
    per_seed, n_train, n_synthetic, warnings = [], [], [], []
    for run in runs:
        config, results = load_run(dataset, "train", run)
        per_seed += results["per_seed"]
        warnings += results.get("warnings") or []
        n_train.append(results.get("n_train"))
        n_synthetic.append(
            (results.get("n_train_synthetic") or 0) + (results.get("n_train_oversampled") or 0)
        )
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
    rare = (config.get("classes") or []).index(config.get("rare_class"))
    row["counts"] = [_rare_counts(m["confusion"], rare) for m in per_seed]
    row["warnings"] = sorted(set(warnings))
    row["predictions_field"] = results.get("predictions_field")
    row["classes"] = config.get("classes")
    row["rare_class"] = config.get("rare_class")
    return row


def _rare_counts(confusion: list[list[int]], rare: int) -> dict[str, int]:
    """True positives, false positives and false negatives of the rare class."""
    matrix = np.asarray(confusion)
    tp = int(matrix[rare, rare])
    return {"tp": tp, "fp": int(matrix[:, rare].sum()) - tp, "fn": int(matrix[rare].sum()) - tp}


def compare_rows(rows: list[dict[str, Any]], experiment: str = "") -> tuple[list, list]:
    """The paired comparisons (see :data:`~curation.experiment.cells.COMPARISONS`) between
    table rows, and their verdict lines."""
    by_cell = {Cell(experiment, r["generator"], r["arm"], r["augment"]): r for r in rows}
    comparisons = [_compare(by_cell[a], by_cell[b]) for a, b in comparison_pairs(list(by_cell))]
    return comparisons, _verdict_lines(comparisons, {r["run"]: r for r in rows})


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


def _verdict_lines(comparisons: list[dict], rows: dict[str, dict]) -> list[dict[str, Any]]:
    """One verdict per comparison (``helps`` / ``no evidence`` / ``hurts`` from the paired CI of
    the rare-class F1 difference, :func:`brain.stats.paired_comparison`, with the AUC's beside
    it); the comparisons of the first two :data:`COMPARISONS` (filtered vs random-matched,
    filtered vs real) are the headline."""
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
    return lines


def format_verdict(line: dict[str, Any]) -> str:
    """``helps: real + bbdm (filtered) vs real: F1 +0.052 [+0.010, +0.090] ...``."""
    auc = ""
    if line.get("auc_verdict") is not None:
        auc = f"; AUC {line['auc_mean_diff']:+.3f} ({line['auc_verdict']})"
    return (
        f"{line['verdict']}: {line['comparison']}: F1 {line['mean_diff']:+.3f} "
        f"[{line['ci'][0]:+.3f}, {line['ci'][1]:+.3f}], {line['n_pairs']} seeds, "
        f"detectable {line['detectable']:.3f}{auc}"
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


_SELECTED = {"f1": "F1 of the rare class", "auc": "AUC", "loss": "loss"}


def markdown_table(rows: list[dict], seeds: int) -> str:
    """Rows as the study's tables: rare-class P, R, F1, AUC, mean +- std over seeds."""
    lines = [
        "| training data | P | R | F1 | AUC | n train (synthetic) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [format_mean_std(row[m]["values"]) for m in METRICS]
        n_train = f"{row['n_train']} ({row['n_train_synthetic']})"
        lines.append(f"| {row['data']} | {' | '.join(cells)} | {n_train} |")
    lines.append(f"\nRare-class metrics on the test split, mean +- std over {seeds} seeds.")
    return "\n".join(lines)


def _counts_table(counts: dict[str, dict[str, int]]) -> str:
    lines = [
        "| generator | synthetic before | leaks (not trained on) | after filter | pass rate |",
        "|---|---|---|---|---|",
    ]
    for name, c in counts.items():
        rate = c["after"] / c["before"] if c["before"] else 0.0
        lines.append(
            f"| {name} | {c['before']} | {c.get('leaks', 0)} | {c['after']} | {rate:.0%} |"
        )
    return "\n".join(lines)


def _scorecard_table(scorecard: dict[str, dict]) -> str:
    """Fidelity of each generator's samples (all / passing) against the real rare class, with
    one line per number saying what it means."""
    from brain.filters.scorecard import METRIC_HELP

    names = list(METRIC_HELP)
    lines = [
        "| generator | samples | n | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for generator, subsets in scorecard.items():
        for subset, card in subsets.items():
            values = " | ".join(f"{card[name]:.2f}" for name in names)
            lines.append(f"| {generator} | {subset} | {card['n_synthetic']} | {values} |")
    lines.append("\nIn the embedding space of the real-data classifier (k = 5 neighbours):")
    lines += [f"- {name}: {text}" for name, text in METRIC_HELP.items()]
    return "\n".join(lines)


def _calibration_table(calibration: dict[str, Any]) -> str:
    """How the level was chosen on val: the pass rate reached, or the retraining sweep."""
    if calibration.get("method") == "val":
        return (
            f"Level {calibration['level']:.4g}: the level at which {calibration['target']:.0%} "
            f"of the {calibration['n_val_rare']} real rare val samples pass (reached "
            f"{calibration['val_rare_pass']:.0%}); {calibration['val_other_pass']:.0%} of the "
            "other-class val samples pass at it. No classifier was trained for it."
        )
    lines = ["| level | synthetic passing | val F1 (rare) |", "|---|---|---|"]
    for entry in calibration["sweep"]:
        chosen = " (chosen)" if entry["level"] == calibration["level"] else ""
        lines.append(
            f"| {entry['level']:.3g}{chosen} | {entry['n_pass']} | "
            f"{entry['val_f1_mean']:.3f}+-{entry['val_f1_std']:.3f} |"
        )
    real = calibration.get("real_only")
    if real:
        lines.append(f"| real only | 0 | {real['val_f1_mean']:.3f}+-{real['val_f1_std']:.3f} |")
    settings = calibration.get("settings", {})
    return "\n".join(lines) + (
        f"\n\nClassifier seeds per level: {settings.get('seeds')}, epochs: {settings.get('epochs')}"
        "; trained on real train + the passing samples, scored on real val only."
    )


def _comparisons_table(comparisons: list[dict], rows: dict[str, dict]) -> str:
    lines = [
        "| training data | vs | mean F1 diff | 95% CI | detectable (80% power) "
        "| paired t p | Wilcoxon p | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        if "mean_diff" not in c:
            continue
        lines.append(
            f"| {rows[c['run']]['data']} | {rows[c['baseline']]['data']} | {c['mean_diff']:+.3f} "
            f"| [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {c['detectable']:.3f} "
            f"| {c['t_test_p']:.3g} | {c['wilcoxon_p']:.3g} | {c['verdict']} |"
        )
    lines.append(
        "\nPaired over seeds (same seed = same initialisation and data order). The verdict "
        "reads the 95% CI of the mean F1 difference, the wider of the paired bootstrap and the "
        "paired t intervals (with few seeds the bootstrap alone is far too narrow): helps "
        "(above 0), hurts (below 0), no evidence (it spans 0). No evidence is not evidence of "
        "no effect: a difference smaller than the detectable one (from the observed spread of "
        "the paired differences, two-sided 5%, 80% power) would likely go unseen with these "
        "seeds."
    )
    return "\n".join(lines)


def _roc_curves(dataset, rows: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    curves = {}
    for row in rows:
        field, classes = row["predictions_field"], row["classes"]
        if not field or not dataset.has_sample_field(field):
            continue
        view = dataset.exists(field)
        labels, logits = view.values(["ground_truth.label", f"{field}.logits"])
        rare = classes.index(row["rare_class"])
        truth = np.array([label == row["rare_class"] for label in labels])
        score = np.exp(np.array([lg[rare] for lg in logits]))
        if 0 < truth.sum() < len(truth):
            curves[row["data"]] = (truth, score)
    return curves


def _ssim_values(dataset, generators: list[str]) -> dict[str, list[float]]:
    from curation.runs.ssim import SSIM_FIELD

    if not dataset.has_sample_field(SSIM_FIELD):
        return {}
    values = {}
    for name in generators:
        made = dataset.match(
            (F(ORIGIN_FIELD) == SYNTHETIC)
            & ((F(f"{LINEAGE_FIELD}.run") == name) | (F(f"{LINEAGE_FIELD}.generator") == name))
        ).exists(SSIM_FIELD)
        values[name] = [v for v in made.values(SSIM_FIELD) if v is not None]
    return values


def _figures(config: ExperimentConfig, results: dict, folder: Path) -> dict[str, str]:
    dataset = open_dataset(config.dataset)
    folder.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str] = {}
    curves = _roc_curves(dataset, results["tables"])
    if curves:
        figures["ROC and precision-recall curves"] = plot_roc_pr(curves, folder / "roc_pr.png").name
    ssim = _ssim_values(dataset, [g.name for g in config.generators])
    if ssim:
        path = plot_ssim_densities(ssim, config.ssim.threshold, folder / "ssim_density.png")
        figures["Maximum SSIM against real training images"] = path.name
    key = filter_key(config.name)
    for tag, title in ((pass_tag(key), "passing"), (reject_tag(key), "rejected")):
        view = dataset.match_tags(tag)
        if len(view):
            paths = view.take(min(GRID_SIZE, len(view)), seed=0).values("filepath")
            grid = sample_grid(paths, folder / f"grid_{title}.png")
            figures[f"Synthetic samples the filter {title.replace('ing', 'ed')}"] = grid.name
    for source in results.get("filter_files", {}).values():
        for path in [source] if isinstance(source, str) else list(source or []):
            if Path(path).is_file():
                target = folder / Path(path).name
                shutil.copyfile(path, target)
                figures[f"Filter: {Path(path).stem.replace('_', ' ')}"] = target.name
    return figures


def write_cv_report(config: ExperimentConfig, results: dict[str, Any], out: Path) -> Path:
    """``report.md`` / ``report.json`` of a cross-validated study (pooled over folds)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = {row["run"]: row for row in results["tables"]}
    headline = [line for line in results["verdicts"] if line["headline"]]
    folds = " | ".join(f"fold {f}" for f in range(results["cv"]))
    spread = [f"| training data | {folds} |", "|---|" + "---|" * results["cv"]]
    for row in results["tables"]:
        spread.append(f"| {row['data']} | " + " | ".join(f"{v:.2f}" for v in row["fold_f1"]) + " |")
    sections = [
        f"# Study `{config.name}` on dataset `{config.dataset}`, {results['cv']}-fold "
        "cross-validated",
        f"Every real labelled sample is tested once, in the fold whose study left it out "
        f"(grouped by `group`, stratified by label). Seeds: {results['seeds']}. Precision, "
        "recall and F1 are pooled over the folds per seed (summed confusion counts); AUC is the "
        "mean over folds.",
        "## Verdicts",
        "\n".join(f"- {format_verdict(v)}" for v in headline) or "(no comparison)",
        "## Rare-class results, pooled over the folds",
        markdown_table(results["tables"], results["seeds"]),
        "## F1 per fold (mean over seeds)",
        "\n".join(spread),
        "## Paired comparisons",
        _comparisons_table(results["comparisons"], rows),
        "## Fold reports",
        "\n".join(f"- fold {f}: {path}" for f, path in enumerate(results["fold_reports"])),
    ]
    report = out / "report.md"
    report.write_text("\n\n".join(sections) + "\n")
    (out / "report.json").write_text(json.dumps(results, indent=2, default=str))
    return report


def write_report(config: ExperimentConfig, results: dict[str, Any], out: Path) -> Path:
    """Write ``report.md``, ``report.json`` and the figures into ``out``; returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(config, results, out / "figures")
    rows = {row["run"]: row for row in results["tables"]}
    sections = [
        f"# Study `{config.name}` on dataset `{config.dataset}`",
        f"Seeds: {results['seeds']} ({', '.join(map(str, results['tables'][0]['seeds']))}); "
        f"classifier: {config.classifier.arch}, {config.classifier.epochs} epochs"
        f" ({config.classifier.schedule} learning rate), best epoch by validation "
        f"{_SELECTED[config.classifier.select]}; filter: {config.filter.method}"
        + (" (level calibrated on val)" if config.filter.calibrate else "")
        + ". The test split is used only for these tables.",
    ]
    headline = [line for line in results.get("verdicts", []) if line["headline"]]
    if headline:
        sections += ["## Verdicts", "\n".join(f"- {format_verdict(v)}" for v in headline)]
    sections += [
        "## Rare-class results",
        markdown_table(results["tables"], results["seeds"]),
    ]
    if results["filter_counts"]:
        sections += [
            "## Synthetic samples before and after the filter",
            _counts_table(results["filter_counts"]),
        ]
        if results["filter"]:
            sections.append(
                "Filter run: "
                + ", ".join(f"{k} = {v}" for k, v in sorted(results["filter"].items()))
            )
        if results.get("reasons"):
            sections.append(
                "Why samples were rejected: "
                + ", ".join(f"{reason} {n}" for reason, n in results["reasons"].items())
            )
        if results.get("calibration"):
            sections += [
                "## Filter level calibrated on val",
                _calibration_table(results["calibration"]),
            ]
        if results.get("scorecard"):
            sections += ["## Fidelity scorecard", _scorecard_table(results["scorecard"])]
        if results.get("filter_warnings"):
            sections.append("\n".join(f"- warning: {w}" for w in results["filter_warnings"]))
    if results["comparisons"]:
        sections += [
            "## Paired comparisons",
            _comparisons_table(results["comparisons"], rows),
        ]
    warnings = sorted({w for row in results["tables"] for w in row.get("warnings", [])})
    if warnings:
        sections += ["## Warnings", "\n".join(f"- {w}" for w in warnings)]
    leakage = results.get("leakage") or {}
    if leakage.get("n_checked"):
        sections += [
            "## Leakage check",
            f"{leakage['n_leaks']} of {leakage['n_checked']} synthetic samples are near-copies "
            f"(SSIM >= {leakage['threshold']}) of a real val or test image among their nearest "
            "real neighbours in the embedding space; they are tagged `leak` and no arm trains "
            "on them"
            + (
                " (" + ", ".join(f"{g}: {n}" for g, n in leakage["by_generator"].items()) + ")."
                if leakage.get("by_generator")
                else "."
            ),
        ]
    if figures:
        sections.append("## Figures")
        sections += [
            f"### {title}\n\n![{title}](figures/{name})" for title, name in figures.items()
        ]
    report = out / "report.md"
    report.write_text("\n\n".join(sections) + "\n")
    (out / "report.json").write_text(
        json.dumps({**results, "figures": figures}, indent=2, default=str)
    )
    return report
