"""Progress of long loops: a tqdm bar on a terminal, plain lines everywhere else.

Every loop of the project that reports progress goes through :func:`progress_bar`. When stderr
is a terminal it is a tqdm bar, as it always was. When stderr is a log file or a pipe (a command
in the background, a batch job), redrawn bars would be unreadable, so a loop that asks for lines
(``every``) prints one plain line to stderr every ``every`` steps and at its end, with the time
elapsed and an estimate of the time left::

    seed 0: 2/10 epochs (loss 0.412, val_f1 0.533), 14 s elapsed, ~56 s left

Inner loops (batches of an epoch, decoding, sampling steps) ask for no lines, so a log holds
one line per epoch, seed, step group or study cell, not one per batch.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

LINES = 20  # plain lines over a long loop of steps (see :func:`every_nth`)


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 04 s"`` or ``"2 h 05 min"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def every_nth(total: int, lines: int = LINES) -> int:
    """Steps between plain lines so that a loop of ``total`` steps prints about ``lines``."""
    return max(1, math.ceil(total / lines))


def remaining_seconds(elapsed: float, done: int, left: int) -> float | None:
    """Time left at the rate so far (``None`` before the first step is done)."""
    if done <= 0:
        return None
    return elapsed / done * max(left, 0)


class LineProgress:
    """The plain-line stand-in for a tqdm bar (the part of its interface the project uses:
    iteration, ``update``, ``set_postfix``, ``close`` and ``with``).

    Args:
        iterable: what to iterate over, or ``None`` when the loop calls :meth:`update`.
        total: the number of steps (``len(iterable)`` when omitted and it has a length).
        desc: what the line starts with.
        unit: one step, as a singular noun (the line says ``3/10 epochs``).
        every: steps between lines; a line is also printed at the last step.
        initial: steps already done (a resumed training); the estimate uses this run's rate.
        stream: where the lines go (stderr when omitted).
        clock: seconds, monotonic (a test can pass its own).
    """

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str,
        unit: str,
        every: int = 1,
        initial: int = 0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.every, self.n, self.initial = max(1, int(every)), initial, initial
        self.stream, self.clock = stream, clock
        self.postfix = ""
        self.started = clock()

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        """Values shown in brackets on the next line (``loss 0.412, val_f1 0.533``)."""
        self.postfix = ", ".join(f"{name} {value}" for name, value in values.items())

    def update(self, n: int = 1) -> None:
        """``n`` more steps done; prints a line when a multiple of ``every`` or the end is
        reached."""
        before, self.n = self.n, self.n + n
        crossed = self.n // self.every > before // self.every
        at_end = self.total is not None and before < self.total <= self.n
        if crossed or at_end:
            print(self.line(), file=self.stream or sys.stderr, flush=True)

    def line(self) -> str:
        """The line for the steps done so far."""
        elapsed = self.clock() - self.started
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        text = f"{self.desc}: {count} {self.unit}{'' if self.total == 1 else 's'}"
        if self.postfix:
            text += f" ({self.postfix})"
        text += f", {format_duration(elapsed)} elapsed"
        if self.total is not None:
            left = remaining_seconds(elapsed, self.n - self.initial, self.total - self.n)
            if left is not None:
                text += f", ~{format_duration(left)} left"
        return text

    def close(self) -> None:
        """Nothing to erase: the lines stay."""


def progress_bar(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str,
    enabled: bool = True,
    every: int | None = None,
    initial: int = 0,
    leave: bool = True,
):
    """A progress reporter for a loop: a tqdm bar when stderr is a terminal; else, with
    ``every``, a :class:`LineProgress` printing a line every ``every`` steps; else a disabled
    tqdm (prints nothing). Nothing at all without ``enabled``.

    Use it as tqdm: iterate over it, or call ``update`` in a ``with`` block.
    """
    from tqdm.auto import tqdm

    on_terminal = sys.stderr.isatty()
    if enabled and not on_terminal and every is not None:
        return LineProgress(
            iterable, total=total, desc=desc, unit=unit, every=every, initial=initial
        )
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        leave=leave,
        disable=not (enabled and on_terminal),
    )
