"""``curate demo``: the whole product on the built-in simulated data."""

from __future__ import annotations

import time
from pathlib import Path

import click

from curation.cli.options import show_progress


@click.command()
@click.option("--name", default="synthcurate-demo", show_default=True, help="Dataset name.")
@click.option(
    "--workdir",
    type=click.Path(),
    default=None,
    help="Where demo data and the report go [default: ~/synthcurate-demo].",
)
@click.option("--fresh", is_flag=True, help="Start over instead of continuing an earlier run.")
def demo(name: str, workdir: str | None, fresh: bool) -> None:
    """Run the whole pipeline on built-in SIMULATED FISH data: data, ingest, classifier, BBDM,
    embeddings, filter, every arm of the study, SSIM and leakage, verdicts, report."""
    from curation.demo_pipeline import run_demo
    from curation.experiment.report import markdown_table
    from curation.experiment.results import format_verdict

    started = time.time()
    root = Path(workdir) if workdir else Path.home() / "synthcurate-demo"
    results = run_demo(name, root, fresh=fresh, echo=click.echo, progress=show_progress())
    click.echo("")
    click.echo(markdown_table(results["tables"], results["seeds"]))
    click.echo("\nverdicts (95% CI of the paired rare-class F1 difference over seeds):")
    for line in results["verdicts"]:
        click.echo(("* " if line["headline"] else "  ") + format_verdict(line))
    for generator, counts in results["filter_counts"].items():
        click.echo(f"filter: {generator}: {counts['after']} of {counts['before']} passed")
    click.echo(f"\nreport: {results['report']}")
    click.echo(f"browse and re-tag in the FiftyOne App: curate app {name}")
    click.echo(f"done in {time.time() - started:.0f} s")
