"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from typing import Any

import click

dataset_option = click.option(
    "--dataset", "-d", "name", required=True, help="Project dataset name."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
overwrite_option = click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a stored run of this name that was asked other settings (without it such a "
    "rerun is refused).",
)


def echo_json(payload: Any) -> None:
    """Print ``payload`` as JSON on one line."""
    click.echo(json.dumps(payload, default=str))


def show_progress(as_json: bool = False) -> bool:
    """Whether a command reports progress: always but with ``--json``. On a terminal it draws
    bars; off one (a log, a pipe) it prints a plain line per epoch, seed, step group or study
    cell with the time elapsed and left (:func:`brain.progress.progress_bar`), none before
    the command's input is checked, so a refused command's stderr is its one error line."""
    return not as_json


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``--param NAME=VALUE`` pairs as a dict: ``-`` in names becomes ``_``; a value is read as
    JSON (``2e-4``, ``true``, ``[1, 2]``), else as YAML (``{a: 1}``), else kept as text (``cpu``).

    Raises:
        CurateError: a pair without ``=`` or without a name.
    """
    import yaml

    from curation.errors import CurateError

    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CurateError(f"--param takes NAME=VALUE, got {pair!r}")
        try:
            parsed = json.loads(value)
        except ValueError:
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                parsed = value
        params[name.strip().replace("-", "_")] = parsed
    return params


devices_option = click.option(
    "--devices",
    type=int,
    default=1,
    show_default=True,
    help="Processes, one per device: GPUs cuda:0..N-1, or CPU cores without a GPU "
    "(data-parallel training; generation sharded).",
)


def settings_options(settings_type: type, *, skip: tuple[str, ...] = ()) -> Callable:
    """Decorator: one ``--field-name`` option per field of the settings dataclass
    ``settings_type`` (e.g. :class:`~brain.settings.TrainSettings`), from its type, default and
    metadata (``help``, ``choices``, ``minimum``), so the command line offers each setting as the
    type defines it. Booleans become flags; fields in ``skip`` are left out."""
    hints = typing.get_type_hints(settings_type)

    def option(entry: dataclasses.Field) -> Callable:
        flag = "--" + entry.name.replace("_", "-")
        meta, default = entry.metadata, entry.default
        hint = hints[entry.name]
        kind = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
        if kind is bool:
            return click.option(flag, is_flag=True, default=default, help=meta.get("help"))
        if meta.get("choices"):
            value_type: Any = click.Choice(list(meta["choices"]))
        elif kind is int:
            value_type = click.IntRange(min=meta.get("minimum"))
        else:
            value_type = kind if kind in (float, str) else str
        return click.option(
            flag,
            type=value_type,
            default=default,
            show_default=default is not None,
            help=meta.get("help"),
        )

    def decorate(command: Callable) -> Callable:
        for entry in reversed(dataclasses.fields(settings_type)):
            if entry.name not in skip:
                command = option(entry)(command)
        return command

    return decorate
