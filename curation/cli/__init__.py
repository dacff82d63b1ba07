"""The ``curate`` command line: a thin layer over the Python API.

Commands are imported only when called, so ``curate --help`` stays fast. Errors a user can cause
(:class:`curation.errors.CurateError` and bad options) print one line and exit with code 2.
A command that uses the database connects to the one its environment names before it does
anything, or stops in one line (:mod:`curation.database`). Progress is drawn as bars on a
terminal and printed as plain lines elsewhere (:func:`curation.cli.options.show_progress`); a
command that fails erases the bars still on screen first, so its error is the one line left.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable

import click

from brain.errors import InputError

# command name -> "module:attribute"; add new commands here.
COMMANDS: dict[str, str] = {
    "ingest": "curation.cli.data:ingest",
    "info": "curation.cli.data:info",
    "config": "curation.cli.data:config",
    "list": "curation.cli.data:list_command",
    "delete": "curation.cli.data:delete",
    "cleanup": "curation.cli.data:cleanup",
    "demo-data": "curation.cli.data:demo_data",
    "demo": "curation.cli.demo:demo",
    "app": "curation.cli.app:app",
    "export": "curation.cli.export:export",
    "experiment": "curation.cli.experiment:experiment",
    "train": "curation.cli.brain:train",
    "embed": "curation.cli.brain:embed",
    "similar": "curation.cli.brain:similar",
    "generate": "curation.cli.generate:generate",
    "filter": "curation.cli.filter:filter_command",
    "segment": "curation.cli.segment:segment",
    "segment-score": "curation.cli.segment:segment_score",
    "runs": "curation.cli.runs:runs",
}

# commands that never touch the database, so do not connect first (see LazyGroup)
NO_DATABASE = frozenset({"demo-data", "segment-score"})

# API parameters whose flag is not ``--`` + the name with dashes
FLAGS = {
    "with_view": "--with",
    "label_field": "--labels",
    "num_threads": "--threads",
    "source_view": "--source",
    "params": "--param",
    "k": "-k",
}


def flag(param: str) -> str:
    """The command-line flag of API parameter ``param``."""
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def _connecting(callback: Callable) -> Callable:
    """``callback`` connecting to the database first (:func:`curation.database.connect`)."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        from curation.database import connect

        connect()
        return callback(*args, **kwargs)

    run.connects_first = True
    return run


def connect_first(command: click.Command) -> click.Command:
    """``command``, and every command of a group, checking and connecting to the database once
    its arguments are parsed (``--help`` and bad options stay fast and touch nothing)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            connect_first(sub)
    elif command.callback is not None and not getattr(command.callback, "connects_first", False):
        command.callback = _connecting(command.callback)
    return command


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; those that use the database connect
    to it first (:mod:`curation.database`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(module), attribute)
        return command if cmd_name in NO_DATABASE else connect_first(command)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthcurate")
def cli() -> None:
    """Curate synthetic images for small, imbalanced biomedical datasets."""


def _clear_progress_bars() -> None:
    """Erase the progress bars still open (on a terminal), before an error line."""
    std = sys.modules.get("tqdm.std")
    if std is None:
        return
    for bar in list(std.tqdm._instances):
        bar.leave = False
        bar.close()


def _fail(message: str, code: int) -> int:
    _clear_progress_bars()
    click.echo(message, err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``curate`` console script."""
    try:
        cli.main(args=argv, prog_name="curate", standalone_mode=False)
    except InputError as error:
        names = {param: flag(param) for param in error.params}
        return _fail(f"curate: error: {error.render(names)}", 2)
    except click.exceptions.Abort:
        return _fail("curate: aborted", 130)
    except click.ClickException as error:
        message = " ".join(error.format_message().split())
        return _fail(f"curate: error: {message} (see --help)", 2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
