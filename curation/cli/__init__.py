"""The ``curate`` command line: a thin layer over the Python API.

Commands are imported only when called, so ``curate --help`` stays fast. Errors a user can cause
(:class:`curation.errors.CurateError` and bad options) print one line and exit with code 2.
Progress bars are drawn only on a terminal (:func:`curation.cli.options.show_progress`), and a
command that fails erases the bars still on screen first, so its error is the one line left.
"""

from __future__ import annotations

import importlib
import sys

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


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


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
