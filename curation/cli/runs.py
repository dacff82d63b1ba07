"""``curate runs``: list, show and delete the runs stored on a dataset (:mod:`curation.runs`)."""

from __future__ import annotations

import click

from curation.cli.options import echo_json, json_option


@click.group()
def runs() -> None:
    """The runs stored on a dataset: list, show, delete (with everything they wrote)."""


@runs.command("list")
@click.argument("name")
@click.option("--kind", default=None, help="Only runs of this kind (train, embed, filter, ...).")
@json_option
def list_command(name: str, kind: str | None, as_json: bool) -> None:
    """List the runs of dataset NAME: key, kind and name."""
    from curation.runs import list_run_keys

    rows = list_run_keys(name, kind)
    if as_json:
        echo_json([{"key": key, "kind": k, "name": n} for key, k, n in rows])
        return
    if not rows:
        click.echo(f"no runs on {name!r}")
    for key, k, n in rows:
        click.echo(f"{key}  ({k} {n!r})")


@runs.command("show")
@click.argument("name")
@click.argument("key")
@json_option
def show(name: str, key: str, as_json: bool) -> None:
    """Show run KEY of dataset NAME: its config, results and what it wrote."""
    from curation.runs import show_run

    info = show_run(name, key)
    if as_json:
        echo_json(info.as_dict())
        return
    click.echo(f"{info.key}: {info.kind} run {info.name!r}, stored {info.timestamp}")
    for section in ("config", "results"):
        click.echo(f"{section}:")
        for field, value in getattr(info, section).items():
            click.echo(f"  {field}: {value}")
    _echo_writes("writes", info.footprint.as_dict())


@runs.command("delete")
@click.argument("name")
@click.argument("key")
@click.option(
    "--with-dependents",
    is_flag=True,
    help="Also delete the runs built on KEY (embed runs on a train run, filter runs on an "
    "embed run, studies on their runs); without it such a KEY is refused.",
)
@json_option
def delete(name: str, key: str, with_dependents: bool, as_json: bool) -> None:
    """Delete run KEY of dataset NAME and every field, tag, view, brain run, evaluation,
    sample and file it wrote (a study: with the runs it made). A run that other runs were
    built on is refused, naming them, unless --with-dependents deletes them too."""
    from curation.runs import delete_run

    removed = delete_run(name, key, with_dependents=with_dependents).as_dict()
    if as_json:
        echo_json({"key": key, "removed": removed})
        return
    _echo_writes(f"deleted {key}; removed", removed)


def _echo_writes(title: str, writes: dict) -> None:
    parts = []
    for what, value in writes.items():
        if value:
            parts.append(
                f"{what} {value}" if isinstance(value, int) else f"{what} {', '.join(value)}"
            )
    click.echo(f"{title}: {'; '.join(parts) or 'nothing'}")
