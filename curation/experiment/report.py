"""The study's report: tables like the reference study's (rare-class P, R, F1, AUC as mean +- std
over seeds), filter counts, comparisons, figures, ``report.md``; the rows and verdicts it
renders are collected by :mod:`curation.experiment.results`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from fiftyone import ViewField as F

from brain.filters.scorecard import METRIC_HELP
from brain.stats import (
    format_mean_std,
)
from curation.datasets import open_dataset
from curation.experiment.cells import (
    filter_key,
)
from curation.experiment.config import ExperimentConfig
from curation.experiment.figures import plot_roc_pr, plot_ssim_densities, sample_grid
from curation.experiment.results import format_verdict
from curation.info import reasons_by_generator
from curation.names import NO_LINEAGE, pass_tag, reason_field, reject_tag
from curation.runs.ssim import SSIM_FIELD
from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, SYNTHETIC

GRID_SIZE = 24
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
