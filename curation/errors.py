"""The one exception type for errors a user can cause."""

from __future__ import annotations


class CurateError(Exception):
    """A problem with the user's input, reported as one line; the CLI exits with code 2.

    Bugs are not ``CurateError``: they stay tracebacks.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
