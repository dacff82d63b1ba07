"""The exception for errors a user can cause in the product layer (datasets, runs, the study).

:class:`CurateError` is a :class:`brain.errors.InputError`, the error of the machine-learning
packages, so callers catch both as ``InputError``; the CLI turns either into one line and exit
code 2. Bugs are neither: they stay tracebacks.
"""

from __future__ import annotations

from brain.errors import InputError


class CurateError(InputError):
    """A problem with the user's input to a dataset-level operation, reported as one line."""
