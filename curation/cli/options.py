"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

dataset_option = click.option(
    "--dataset", "-d", "name", required=True, help="Project dataset name."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def echo_json(payload: Any) -> None:
    """Print ``payload`` as JSON on one line."""
    click.echo(json.dumps(payload, default=str))


def show_progress(as_json: bool = False) -> bool:
    """Whether a command draws progress bars: only on a terminal, and never with ``--json``
    (logs and pipes get no bars, so a failing command's stderr is its one error line)."""
    return not as_json and sys.stderr.isatty()
