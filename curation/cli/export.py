"""``curate export``: write a curated view as a training set."""

from __future__ import annotations

import click

from curation.cli.options import echo_json, json_option


@click.command()
@click.argument("name")
@click.option("--out", "out", required=True, type=click.Path(), help="Folder to create.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["imagefolder", "fiftyone", "csv"]),
    default="imagefolder",
    show_default=True,
)
@click.option("--view", default=None, help="A saved or built-in view [default: curated view].")
@click.option("--filter", "filter_key", default=None, help="Filter run whose passes join train.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out folder.")
@json_option
def export(name, out, fmt, view, filter_key, overwrite, as_json) -> None:
    """Export real train + passing synthetic samples (or --view) of NAME to --out."""
    from curation.export import export_view

    summary = export_view(name, out, fmt=fmt, view=view, filter_key=filter_key, overwrite=overwrite)
    if as_json:
        echo_json(summary)
    else:
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(summary["counts"].items()))
        click.echo(f"exported {summary['n_samples']} samples ({counts}) to {summary['out']}")
