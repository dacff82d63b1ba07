"""``curate generate``: a thin wrapper over :func:`curation.runs.generate.generate`."""

from __future__ import annotations

import click

from curation.cli.options import (
    devices_option,
    echo_json,
    json_option,
    overwrite_option,
    parse_params,
    show_progress,
)
from generators import GENERATORS


@click.command()
@click.argument("name")
@click.option("--method", "-m", required=True, type=click.Choice(GENERATORS.names()))
@click.option("--run", "-r", required=True, help="Run name; rerunning it continues it.")
@click.option(
    "--condition",
    "-c",
    default=None,
    help="channel:I, grayscale, blur:SIGMA or masked (default: by method and channel count).",
)
@click.option("--source", "source_view", default=None, help="Source view (default: by method).")
@click.option("--n", "n", type=int, default=None, help="Synthetic samples for the run in total.")
@click.option("--steps", type=int, default=None, help="Sampling steps (diffusion methods).")
@click.option("--train-steps", type=int, default=None, help="Training steps.")
@click.option("--resume", is_flag=True, help="Continue an interrupted training of the run.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--param", "-p", "params", multiple=True, help="Method parameter KEY=VALUE.")
@click.option("--mask-field", default=None, help="Segmentation field with the masks.")
@click.option("--checkpoint", default=None, type=click.Path(), help="Use a saved generator.")
@click.option("--checkpoint-every", type=int, default=None, help="Training checkpoint interval.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Pad images to a centred square and resize to SIZE x SIZE (default: the dataset's "
    "size policy, see `curate config`).",
)
@click.option(
    "--pad",
    default=None,
    help="Padding for --size: border, edge, reflect or constant:V (default: the policy's).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@devices_option
@overwrite_option
@click.option(
    "--threads", "num_threads", type=click.IntRange(min=1), default=None, help="Torch CPU threads."
)
@json_option
def generate(name, method, run, params, as_json, **options) -> None:
    """Train (or load) a generator and add synthetic rare-class samples to dataset NAME."""
    from curation.runs.generate.run import describe_sources
    from curation.runs.generate.run import generate as run_generate

    report = run_generate(
        name, method, run, params=parse_params(params), progress=show_progress(as_json), **options
    )
    for warning in report.warnings:
        click.echo(f"curate: warning: {warning}", err=True)
    if as_json:
        echo_json(report.as_dict())
        return
    click.echo(
        f"{method} run {run!r}: added {report.added} synthetic samples to {name!r} "
        f"({report.total} in the run, {report.skipped} already there)"
    )
    click.echo(describe_sources(report))
    click.echo(f"checkpoint {report.checkpoint_digest[:12]} ({report.trained_steps} steps)")
    if report.loss_curve:
        click.echo(f"loss curve: {report.loss_curve}")
