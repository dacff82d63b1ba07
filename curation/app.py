"""Launching the FiftyOne App on a project dataset, with synthcurate's plugin enabled, and
stopping its server process promptly."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator

import fiftyone as fo
import psutil
from fiftyone import ViewField as F

from curation.datasets import open_dataset, resolve_view
from curation.errors import CurateError
from curation.names import pass_tag, reject_tag
from curation.plugins import enable_plugins
from curation.runs.records import latest_run

PASS_COLOR, REJECT_COLOR = "#2ca02c", "#d62728"


def check_port_free(address: str, port: int) -> None:
    """Raise :class:`CurateError` if ``address:port`` cannot be served on."""
    if not 0 < port < 65536:
        raise CurateError(f"port {port} out of range 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the App server does
        try:
            probe.bind((address, port))
        except OSError as error:
            raise CurateError(f"cannot serve on {address}:{port}: {error.strerror}") from None


def latest_filter_key(dataset) -> str | None:
    """The key of the most recent filter run on ``dataset``, if any."""
    return latest_run(dataset, "filter")


def filter_color_scheme(key: str):
    """Sample tags of filter run ``key`` coloured green (pass) and red (reject)."""
    return fo.ColorScheme(
        color_by="value",
        fields=[
            {
                "path": "tags",
                "valueColors": [
                    {"value": pass_tag(key), "color": PASS_COLOR},
                    {"value": reject_tag(key), "color": REJECT_COLOR},
                ],
            }
        ],
    )


def default_view(dataset):
    """What the App opens on: the synthetic samples of the latest filter run, best score first,
    with its pass/reject colours; else the whole dataset."""
    key = latest_filter_key(dataset)
    if key is None or f"{key}_score" not in dataset.get_field_schema():
        return None, None
    view = dataset.match(F("origin") == "synthetic").sort_by(f"{key}_score", reverse=True)
    return view, filter_color_scheme(key)


def launch(
    name: str, *, view_name: str | None = None, port: int = 5151, address: str = "127.0.0.1"
):
    """Start the App server on ``name`` (on a named view, or :func:`default_view`) and return the
    session. The synthcurate plugin's operators are available in the App."""
    enable_plugins()
    dataset = open_dataset(name)
    check_port_free(address, port)
    color_scheme = None
    if view_name:
        view = resolve_view(dataset, view_name)
    else:
        view, color_scheme = default_view(dataset)
    return fo.launch_app(
        dataset, view=view, port=port, address=address, auto=False, color_scheme=color_scheme
    )


SERVER_STOP_TIMEOUT = 1.0
"""Seconds the App's server processes get to exit when asked before they are killed."""


def _server_processes() -> list:
    """This process's FiftyOne App server service (FiftyOne's ``service/main.py --51-service
    server`` child) and everything it started."""
    found = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            arguments = child.cmdline()
            flags = [i for i, a in enumerate(arguments) if a == "--51-service"]
            if any(arguments[i + 1 : i + 2] == ["server"] for i in flags):
                found += [*child.children(recursive=True), child]
    return found


def stop_server(timeout: float = SERVER_STOP_TIMEOUT) -> None:
    """Stop the App server this process started: ask its processes to exit (SIGTERM), kill
    those still there after ``timeout`` seconds (FiftyOne's own shutdown waits for the server
    however long it takes)."""
    processes = _server_processes()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=timeout)


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit(143)`` while inside, so ``finally`` blocks run (the
    default action ends the process at once, leaving the App server behind)."""

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
