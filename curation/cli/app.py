"""``curate app``: the FiftyOne App on a project dataset."""

from __future__ import annotations

import click


@click.command()
@click.argument("name")
@click.option("--view", "view_name", default=None, help="Open on this saved or built-in view.")
@click.option("--port", type=int, default=5151, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True)
def app(name: str, view_name: str | None, port: int, address: str) -> None:
    """Launch the FiftyOne App on NAME (loopback by default) and wait; Ctrl+C or SIGTERM stops
    it and its server."""
    from curation.app import exit_on_sigterm, launch, stop_server

    with exit_on_sigterm():
        try:
            session = launch(name, view_name=view_name, port=port, address=address)
            click.echo(f"FiftyOne App: {session.url}  (Ctrl+C to stop)")
            session.wait(-1)
        finally:
            stop_server()
