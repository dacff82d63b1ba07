"""Launching the FiftyOne App on a project dataset."""

from __future__ import annotations

import socket

from curation.datasets import open_dataset, resolve_view
from curation.errors import CurateError


def check_port_free(address: str, port: int) -> None:
    """Raise :class:`CurateError` if ``address:port`` is already taken."""
    if not 0 < port < 65536:
        raise CurateError(f"port {port} out of range 1-65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as error:
            raise CurateError(f"cannot serve on {address}:{port}: {error.strerror}") from None


def launch(
    name: str, *, view_name: str | None = None, port: int = 5151, address: str = "127.0.0.1"
):
    """Start the App server on ``name`` (optionally on a named view) and return the session."""
    import fiftyone as fo

    dataset = open_dataset(name)
    view = resolve_view(dataset, view_name) if view_name else None
    check_port_free(address, port)
    return fo.launch_app(dataset, view=view, port=port, address=address, auto=False)
