"""``curate experiment``: the whole study from one YAML config."""

from __future__ import annotations

import click

from curation.cli.options import echo_json, json_option, show_progress


@click.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=click.Path())
@click.option("--out", type=click.Path(), default=None, help="Report folder [default: runs/NAME].")
@json_option
def experiment(config_path: str, out: str | None, as_json: bool) -> None:
    """Run every arm of the study (real, class-weighted, + unfiltered / filtered / random-matched
    synthetic, oversampled), with and without augmentation, over several seeds; write tables,
    paired tests with verdicts, figures and report.md. Reruns resume."""
    from curation.experiment import load_config, run_experiment
    from curation.experiment.report import format_verdict, markdown_table

    config = load_config(config_path)
    echo = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    results = run_experiment(config, out=out, echo=echo, progress=show_progress(as_json))
    if as_json:
        echo_json(results)
        return
    click.echo(markdown_table(results["tables"], results["seeds"]))
    for line in results["verdicts"]:
        click.echo(("* " if line["headline"] else "  ") + format_verdict(line))
    click.echo(f"report: {results['report']}")
