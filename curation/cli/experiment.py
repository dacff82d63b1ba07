"""``curate experiment``: the whole study from one YAML config."""

from __future__ import annotations

import click

from curation.cli.options import echo_json, json_option, show_progress


@click.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=click.Path())
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Report folder [default: the config's out, else <media>/experiments/NAME under the "
    "dataset's media folder].",
)
@click.option("--ray", "use_ray", is_flag=True, help="Train the cells as tasks on a local Ray.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="CPUs of the local Ray (cells trained at once) [default: all].",
)
@click.option(
    "--address", default=None, help="Train on a running Ray cluster: auto or ray://HOST:10001."
)
@json_option
def experiment(
    config_path: str,
    out: str | None,
    use_ray: bool,
    workers: int | None,
    address: str | None,
    as_json: bool,
) -> None:
    """Run every arm of the study (real, class-weighted, + unfiltered / filtered / random-matched
    synthetic, oversampled), with and without augmentation, over several seeds; write tables,
    paired tests with verdicts, figures and report.md. Reruns resume. With --ray or --address
    the trainings run as Ray tasks, one device each (the config's ``ray`` section does too)."""
    from curation.experiment import load_config, run_experiment
    from curation.experiment.config import with_ray
    from curation.experiment.report import markdown_table
    from curation.experiment.results import format_verdict

    config = load_config(config_path)
    if use_ray or workers is not None or address is not None:
        config = with_ray(config, address=address, workers=workers)
    echo = (lambda message: click.echo(message, err=True)) if as_json else click.echo
    results = run_experiment(config, out=out, echo=echo, progress=show_progress(as_json))
    if as_json:
        echo_json(results)
        return
    click.echo(markdown_table(results["tables"], results["seeds"]))
    for line in results["verdicts"]:
        click.echo(("* " if line["headline"] else "  ") + format_verdict(line))
    click.echo(f"report: {results['report']}")
