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
from brain.runs import load_run
from brain.stats import format_mean_std, paired_comparison
from curation.datasets import open_dataset
from curation.experiment.cells import Cell
from curation.experiment.config import ExperimentConfig
from curation.experiment.figures import plot_roc_pr, plot_ssim_densities, sample_grid
from curation.schema import LINEAGE_FIELD, ORIGIN_FIELD, SYNTHETIC
from curation.tags import pass_tag, reject_tag

METRICS = ("precision", "recall", "f1", "auc")
GRID_SIZE = 24


def _row(dataset, cell: Cell) -> dict[str, Any]:
    config, results = load_run(dataset, "train", cell.run)
    per_seed = results["per_seed"]
    row = {
        "run": cell.run,
        "data": cell.data_label,
        "generator": cell.generator,
        "filtered": cell.filtered,
        "augment": cell.augment,
        "seeds": [m["seed"] for m in per_seed],
        "n_train": results.get("n_train"),
        "n_train_synthetic": results.get("n_train_synthetic"),
    }
    for metric in METRICS:
        values = [m.get(metric) for m in per_seed]
        row[metric] = {**mean_std(values), "values": values}
    row["predictions_field"] = results.get("predictions_field")
    row["classes"] = config.get("classes")
    row["rare_class"] = config.get("rare_class")
    return row


def _compare(row: dict, base: dict) -> dict[str, Any]:
    by_seed = dict(zip(base["seeds"], base["f1"]["values"], strict=True))
    pairs = [
        (v, by_seed[s])
        for s, v in zip(row["seeds"], row["f1"]["values"], strict=True)
        if s in by_seed
    ]
    result = {"run": row["run"], "baseline": base["run"], "metric": "f1"}
    if len(pairs) >= 2:
        treated, baseline = zip(*pairs, strict=True)
        result.update(paired_comparison(treated, baseline))
    return result


def collect_results(
    config: ExperimentConfig,
    cells: list[Cell],
    counts: dict[str, dict[str, int]],
    filter_result: dict[str, Any],
    generation: dict[str, dict],
) -> dict[str, Any]:
    """Read every cell's stored run and compare it with its real baseline."""
    dataset = open_dataset(config.dataset)
    rows = {cell.run: _row(dataset, cell) for cell in cells}
    comparisons = [
        _compare(rows[cell.run], rows[cell.baseline.run]) for cell in cells if cell.generator
    ]
    return {
        "experiment": config.name,
        "dataset": config.dataset,
        "seeds": config.seeds,
        "tables": list(rows.values()),
        "comparisons": comparisons,
        "filter_counts": counts,
        "filter": {k: v for k, v in filter_result.items() if not isinstance(v, (list, dict))},
        "filter_files": {k: v for k, v in filter_result.items() if k.endswith(("_png", "plots"))},
        "calibration": filter_result.get("calibration"),
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
    lines = ["| generator | synthetic before | after filter | pass rate |", "|---|---|---|---|"]
    for name, c in counts.items():
        rate = c["after"] / c["before"] if c["before"] else 0.0
        lines.append(f"| {name} | {c['before']} | {c['after']} | {rate:.0%} |")
    return "\n".join(lines)


def _calibration_table(calibration: dict[str, Any]) -> str:
    """The level sweep on val: synthetic samples passing and the val F1 of the rare class."""
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
        "| training data | vs | mean F1 diff | 95% bootstrap CI | paired t p | Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        if "mean_diff" not in c:
            continue
        lines.append(
            f"| {rows[c['run']]['data']} | {rows[c['baseline']]['data']} | {c['mean_diff']:+.3f} "
            f"| [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] | {c['t_test_p']:.3g} "
            f"| {c['wilcoxon_p']:.3g} |"
        )
    lines.append("\nPaired over seeds (same seed = same initialisation and data order).")
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
    from brain.near_copies import SSIM_FIELD

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
    from curation.experiment.runner import filter_key

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
    key = filter_key(config)
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
        if results.get("calibration"):
            sections += [
                "## Filter level calibrated on val",
                _calibration_table(results["calibration"]),
            ]
    if results["comparisons"]:
        sections += [
            "## Comparison with the real baseline",
            _comparisons_table(results["comparisons"], rows),
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
