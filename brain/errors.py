"""The exception for errors a user can cause, shared by ``brain`` and ``generators``.

:class:`InputError` carries a one-line message that names parameters by their Python names,
each written in backticks (```seeds` must be at least 1``) and listed in ``params``. ``str()``
shows the plain names; a front end shows its own spelling with :meth:`InputError.render` (the
command line's flags: ``--seeds must be at least 1``). ``curation.errors.CurateError`` builds
on it. Bugs are not ``InputError``: they stay tracebacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class InputError(Exception):
    """A problem with the caller's input, reported as one line.

    Args:
        message: what is wrong; a parameter it names is written in backticks.
        params: the parameters the message names in backticks.
    """

    def __init__(self, message: str, *, params: Sequence[str] = ()) -> None:
        self.template = " ".join(str(message).split())
        self.params = tuple(params)
        super().__init__(self.render())

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """The message with each parameter spelt as ``names`` has it (default: its own name)."""
        text = self.template
        for param in self.params:
            text = text.replace(f"`{param}`", (names or {}).get(param, param))
        return text
