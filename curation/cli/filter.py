"""``curate filter``: score synthetic samples against the real rare class and tag pass / reject."""

from __future__ import annotations

import click

from brain.level_choice import CALIBRATIONS, parse_level_choice
from curation.cli.options import (
    echo_json,
    json_option,
    overwrite_option,
    parse_params,
    show_progress,
)
from curation.errors import CurateError


def _filter_names() -> list[str]:
    from brain.filters import FILTERS

    return FILTERS.names()


def _parse_levels(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CurateError(f"--levels takes comma-separated numbers, got {text!r}") from None


@click.command("filter")
@click.argument("name")
@click.option(
    "--method",
    type=click.Choice(_filter_names()),
    default="combined",
    show_default=True,
    help="The filter: combined (recommended: realistic AND likely rare AND no copy), umap_gmm "
    "(the study's reference), ...",
)
@click.option("--key", required=True, help="Run key K: field K_score, tags K:pass / K:reject.")
@click.option("--embed", default=None, help="Embed run to read [default: the latest].")
@click.option("--level", type=float, default=None, help="Pass level [default: the filter's].")
@click.option(
    "--calibrate",
    type=click.Choice(CALIBRATIONS),
    is_flag=False,
    flag_value="val",
    default=None,
    help="Pick the level on the real val split: 'val' (alone: --calibrate) = the level at which "
    "--target of the rare val samples pass; 'retrain' = best val F1 of retraining per level.",
)
@click.option(
    "--target",
    type=float,
    default=None,
    help="Share of real rare val samples that must pass with --calibrate val [default: 0.95].",
)
@click.option(
    "--copy-ssim",
    type=float,
    default=None,
    help="SSIM in (0, 1] at or above which a synthetic sample copies a real train image or its "
    "source and is rejected [default: measured on the real rare train images].",
)
@click.option("--levels", default=None, help="Levels to sweep with --calibrate retrain.")
@click.option("--calibrate-seeds", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--calibrate-epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option(
    "--size",
    type=click.IntRange(min=8),
    default=None,
    help="Size policy of the run's image checks and retraining sweep (default: the dataset's).",
)
@click.option("--seed", type=int, default=None, help="random_state of the filter.")
@click.option("--param", "-p", "params", multiple=True, help="Filter parameter NAME=VALUE.")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
@click.option("--no-visualization", is_flag=True, help="Skip the App's UMAP brain run.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@overwrite_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads.")
@json_option
def filter_command(
    name: str,
    method: str,
    key: str,
    embed: str | None,
    level: float | None,
    calibrate: str | None,
    target: float | None,
    copy_ssim: float | None,
    levels: str | None,
    calibrate_seeds: int,
    calibrate_epochs: int,
    size: int | None,
    seed: int | None,
    params: tuple[str, ...],
    no_plots: bool,
    no_visualization: bool,
    device: str,
    overwrite: bool,
    threads: int | None,
    as_json: bool,
) -> None:
    """Fit a filter on the real train embeddings of dataset NAME, score every synthetic sample
    (field K_score) and tag it K:pass or K:reject."""
    from brain.filter_calibration import CalibrationSettings
    from brain.filters.base import filter_params
    from brain.filters.scorecard import format_scorecard
    from brain.settings import TrainSettings
    from curation.runs.filter.run import run_filter

    options = parse_params(params)
    if seed is not None:
        if "random_state" not in filter_params(method):
            raise CurateError(f"--seed: filter {method!r} has no randomness")
        options["random_state"] = seed
    calibration = CalibrationSettings(
        levels=_parse_levels(levels),
        seeds=calibrate_seeds,
        train=TrainSettings(epochs=calibrate_epochs, device=device),
        num_threads=threads,
        progress=show_progress(as_json),
    )
    report = run_filter(
        name,
        method,
        key,
        embed=embed,
        level=parse_level_choice(level, calibrate, target, settings=calibration),
        params=options,
        copy_threshold=copy_ssim,
        size=size,
        visualize=not no_visualization,
        plots=not no_plots,
        overwrite=overwrite,
    )
    if as_json:
        echo_json(report.to_record())
        return
    _echo_calibration(report.to_record()["calibration"])
    click.echo(
        f"{key} ({method}): {report.n_pass} of {report.n_synthetic} synthetic samples pass "
        f"at level {report.level:.4g} (default {report.default_level:.4g}); "
        f"{report.n_overridden} manual overrides"
    )
    reasons = ", ".join(f"{reason} {n}" for reason, n in report.reasons.items())
    click.echo(f"reasons: {reasons}")
    click.echo(describe_copy_gate(report.copies))
    for generator, summary in report.by_generator.items():
        click.echo(describe_generator(generator, summary))
    for generator, card in report.scorecard.items():
        click.echo(f"scorecard {generator}: {format_scorecard(card)}")
    click.echo(f"fields {', '.join(report.fields)}; views {', '.join(report.views)}")
    if report.brain_key:
        click.echo(f"App embeddings: brain key {report.brain_key!r}")
    for path in report.plots:
        click.echo(f"plot: {path}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}")


def describe_copy_gate(copies: dict) -> str:
    """``near-copy gate: SSIM >= 0.75 or pixel distance <= 0.07 (...); rejected ...``."""
    if not copies:
        return "near-copy gate: not recorded (a run from before the gate)"
    how = {
        "data": f"measured on {copies['n_reference']} real rare train images",
        "given": "SSIM given",
        "fallback": "too few real rare train images to measure: defaults",
    }[copies["chosen"]]
    rejected = ", ".join(f"{r} {n}" for r, n in copies["rejected"].items()) or "none"
    size = f", compared at {copies['size']} px" if copies.get("size") else ""
    return (
        f"near-copy gate: SSIM >= {copies['ssim']:.3f} or pixel distance <= "
        f"{copies['distance']:.3f} ({how}{size}); rejected: {rejected}"
    )


def describe_generator(generator: str, summary: dict) -> str:
    """``bbdm: 14 of 60 pass (authenticity of those passing 0.45)``."""
    authenticity = summary.get("authenticity")
    beside = "" if authenticity is None else f" (authenticity of those passing {authenticity:.2f})"
    return f"{generator}: {summary['n_pass']} of {summary['n']} pass{beside}"


def _echo_calibration(calibration: dict | None) -> None:
    if not calibration:
        return
    if calibration.get("method") == "val":
        held = {
            "few-val": " (too few for the target: the filter's default level)",
            "floor": " (held at the filter's loosest level)",
        }.get(calibration.get("fallback"), "")
        click.echo(
            f"calibrated on val{held}: {calibration['val_rare_pass']:.1%} of "
            f"{calibration['n_val_rare']} real rare val samples pass (target "
            f"{calibration['target']:.0%}), {calibration['val_other_pass']:.1%} of the others"
        )
        return
    for entry in calibration["sweep"]:
        click.echo(
            f"level {entry['level']:.3f}: {entry['n_pass']} pass, val F1 "
            f"{entry['val_f1_mean']:.3f} +- {entry['val_f1_std']:.3f}"
        )
    real_only = calibration["real_only"]
    if real_only:
        click.echo(
            f"real only: val F1 {real_only['val_f1_mean']:.3f} +- {real_only['val_f1_std']:.3f}"
        )
