"""The study's results: tables like the reference study's (rare-class P, R, F1, AUC as mean +- std
over seeds), filter counts, paired comparisons with the real baseline, figures, ``report.md``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from fiftyone import ViewField as F

from brain.filters.scorecard import METRIC_HELP
from brain.metrics import mean_std
from brain.stats import (
    count_intervals,
    detectable_difference,
    format_mean_std,
    paired_comparison,
    verdict,
)
from curation.datasets import open_dataset
from curation.experiment.cells import (
    COMPARISONS,
    SYNTHETIC_ARMS,
    Cell,
    comparison_pairs,
    filter_key,
)
from curation.experiment.config import ExperimentConfig
from curation.experiment.figures import plot_roc_pr, plot_ssim_densities, sample_grid
from curation.experiment.verdicts import describe_basis, qualify
from curation.experiment.views import copy_shares
from curation.info import reasons_by_generator
from curation.names import NO_LINEAGE, pass_tag, reason_field, reject_tag
from curation.runs.ssim import SSIM_FIELD
from curation.runs.train import TRAIN
from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, SYNTHETIC

METRICS = ("precision", "recall", "f1", "auc")
GRID_SIZE = 24


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


_SELECTED = {"f1": "F1 of the rare class", "auc": "AUC", "loss": "loss"}


def _with_interval(values: list, interval: list[float] | None) -> str:
    """``"0.62+-0.05 [0.41, 0.79]"``: the seed spread, then the test-sample interval."""
    shown = format_mean_std(values)
    return shown if interval is None else f"{shown} [{interval[0]:.2f}, {interval[1]:.2f}]"


def _at_specificity_cell(summary: dict | None) -> str:
    """``"0.55+-0.05 (0.91+-0.01)"``: recall, then test specificity, at the val threshold."""
    if summary is None:
        return "n/a"
    recall = format_mean_std(summary["recall"]["values"])
    return f"{recall} ({format_mean_std(summary['test_specificity']['values'])})"


def markdown_table(rows: list[dict], seeds: int) -> str:
    """Rows as the study's tables: rare-class P, R, F1, AUC, mean +- std over seeds, with the
    95% intervals over the test samples of R and F1 (:func:`brain.stats.count_intervals`), and
    the recall at the specificity fixed on val."""
    target = next((r["at_specificity"]["target"] for r in rows if r.get("at_specificity")), None)
    at = f"R at val spec. {target:g} (test spec.)" if target is not None else "R at val spec."
    lines = [
        f"| training data | P | R [95% CI] | F1 [95% CI] | AUC | {at} | n train (synthetic) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            format_mean_std(row["precision"]["values"]),
            _with_interval(row["recall"]["values"], row.get("recall_ci")),
            _with_interval(row["f1"]["values"], row.get("f1_ci")),
            format_mean_std(row["auc"]["values"]),
            _at_specificity_cell(row.get("at_specificity")),
        ]
        n_train = f"{row['n_train']} ({row['n_train_synthetic']})"
        lines.append(f"| {row['data']} | {' | '.join(cells)} | {n_train} |")
    lines.append(
        f"\nRare-class metrics on the test split, mean +- std over {seeds} seeds (training "
        "uncertainty). In brackets, the 95% interval over the test samples (test-sample "
        "uncertainty), at the seeds' mean confusion counts, since every seed is tested on the "
        "same samples: Wilson score interval for R, bootstrap of the test samples (a multinomial "
        "draw of the confusion counts) for F1. R at val spec.: each seed's threshold on the "
        "rare-class score is the lowest that keeps that share of the other-class val samples "
        "below it; the recall and specificity shown are on test at that threshold (the test "
        "split never picks it)."
    )
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


def reasons_table(counts: dict[str, dict[str, int]]) -> str:
    """Generator x reason counts (:func:`curation.info.reasons_by_generator`) as a markdown
    table, with each generator's total."""
    reasons = sorted({reason for by_reason in counts.values() for reason in by_reason})
    lines = [
        "| generator | " + " | ".join(reasons) + " | total |",
        "|---|" + "---|" * (len(reasons) + 1),
    ]
    for generator, by_reason in counts.items():
        cells = " | ".join(str(by_reason.get(reason, 0)) for reason in reasons)
        lines.append(f"| {generator} | {cells} | {sum(by_reason.values())} |")
    return "\n".join(lines)


def _scorecard_table(scorecard: dict[str, dict]) -> str:
    """Fidelity of each generator's samples (all / passing) against the real rare class, with
    one line per number saying what it means."""
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


def _grid_tiles(dataset, view, key: str) -> tuple[list[str], list[str]]:
    """File paths of ``view``'s samples and a label per tile: its generator (``lineage.run``)
    and its reason under filter run ``key`` (``pass`` or the reject reason; ``-``: none)."""
    paths, runs = view.values(["filepath", f"{LINEAGE_FIELD}.run"])
    field = reason_field(key)
    reasons = view.values(field) if dataset.has_sample_field(field) else [None] * len(paths)
    labels = [
        f"{run or NO_LINEAGE}\n{reason or '-'}" for run, reason in zip(runs, reasons, strict=True)
    ]
    return paths, labels


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
            paths, labels = _grid_tiles(dataset, view.take(min(GRID_SIZE, len(view)), seed=0), key)
            grid = sample_grid(paths, folder / f"grid_{title}.png", labels=labels)
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
    by_generator = {}
    if results["filter_counts"]:
        by_generator = reasons_by_generator(open_dataset(config.dataset), filter_key(config.name))
    sections = [
        f"# Study `{config.name}` on dataset `{config.dataset}`",
        f"Seeds: {results['seeds']} ({', '.join(map(str, results['tables'][0]['seeds']))}); "
        f"classifier: {config.classifier.arch}, {config.classifier.epochs} epochs"
        f" ({config.classifier.schedule} learning rate), best epoch by validation "
        f"{_SELECTED[config.classifier.select]}; filter: {config.filter.method}"
        + f" ({config.filter.level_choice().describe()})"
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
        if by_generator:
            sections += ["### Filter decisions per generator", reasons_table(by_generator)]
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
        json.dumps(
            {**results, "reasons_by_generator": by_generator, "figures": figures},
            indent=2,
            default=str,
        )
    )
    return report
