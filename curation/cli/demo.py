"""``curate demo``: the whole product on the built-in simulated data."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--name", default="synthcurate-demo", show_default=True, help="Dataset name.")
@click.option(
    "--workdir",
    type=click.Path(),
    default=None,
    help="Where demo data and reports go [default: ~/synthcurate-demo].",
)
def demo(name: str, workdir: str | None) -> None:
    """Run the demo on built-in SIMULATED FISH data: make data, ingest, print counts."""
    from curation.demo_pipeline import run_demo

    root = Path(workdir) if workdir else Path.home() / "synthcurate-demo"
    run_demo(name, root, echo=click.echo)
