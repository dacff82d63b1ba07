"""How a filter run chooses its level: one value, checked once when built, stored in one form.

- :class:`Fixed`: a given level (``None``: the filter's fitted ``default_level_``);
- :class:`PassRate`: the level at which ``target`` of the real rare val samples pass
  (:func:`brain.filter_calibration.calibrate_pass_rate`; ``--calibrate val``);
- :class:`Retrain`: retrain a classifier per level and keep the best val F1
  (:func:`brain.filter_calibration.calibrate_level`; ``--calibrate retrain``).

:func:`parse_level_choice` builds one from what the command line, the App and the study YAML are
given (``level``, ``calibrate``, ``target``), so all three build the same value.
:meth:`Fixed.as_dict` (and the others') is the stored form; :func:`level_choice_from_record`
reads it back, and the older form too (the config keys ``level``, ``calibrate``, ``target``).
Whether a filter accepts a fixed level is :func:`check_level_choice`'s one call of
``check_level``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, ClassVar

from brain.errors import InputError
from brain.filter_calibration import CalibrationSettings, check_target

CALIBRATIONS = ("val", "retrain")
"""The calibrations, as ``calibrate`` names them (and :attr:`PassRate.name`,
:attr:`Retrain.name`)."""

NO_CALIBRATION = "off"
"""``calibrate`` for a fixed level, where a front end needs a word (the App's choice)."""


def _number(value: object, name: str) -> float:
    """``value`` as a float, or an :class:`InputError` about parameter ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise InputError(f"`{name}` must be a number, got {value!r}", params=(name,))
    return float(value)


@dataclass(frozen=True)
class Fixed:
    """A fixed level; ``None``: the filter's fitted default (``default_level_``)."""

    level: float | None = None
    name: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        if self.level is not None and not math.isfinite(_number(self.level, "level")):
            raise InputError(
                f"`level` must be a finite number, got {self.level}", params=("level",)
            )

    def as_dict(self) -> dict[str, Any]:
        """The stored form, e.g. ``{"choice": "fixed", "level": 0.9}``."""
        return {"choice": self.name, "level": None if self.level is None else float(self.level)}

    def describe(self) -> str:
        """One line for reports."""
        return "the filter's default level" if self.level is None else f"level {self.level:g}"


@dataclass(frozen=True)
class PassRate:
    """The level at which ``target`` (in ``(0, 1)``) of the real rare val samples pass."""

    target: float = 0.95
    name: ClassVar[str] = "val"

    def __post_init__(self) -> None:
        check_target(_number(self.target, "target"))

    def as_dict(self) -> dict[str, Any]:
        """The stored form, e.g. ``{"choice": "val", "target": 0.95}``."""
        return {"choice": self.name, "target": float(self.target)}

    def describe(self) -> str:
        """One line for reports."""
        return f"the level at which {self.target:.0%} of the real rare val samples pass"


@dataclass(frozen=True)
class Retrain:
    """Retrain a classifier per level (``settings``: levels, seeds, training); keep the level
    of best val F1."""

    settings: CalibrationSettings = field(default_factory=CalibrationSettings)
    name: ClassVar[str] = "retrain"

    def __post_init__(self) -> None:
        if not isinstance(self.settings, CalibrationSettings):
            raise TypeError(f"Retrain takes CalibrationSettings, got {self.settings!r}")
        self.settings.check()

    def as_dict(self) -> dict[str, Any]:
        """The stored form: ``{"choice": "retrain", "settings": {...}}``."""
        return {"choice": self.name, "settings": self.settings.as_dict()}

    def describe(self) -> str:
        """One line for reports."""
        return "the level of best val F1, retraining a classifier per level"


LevelChoice = Fixed | PassRate | Retrain
"""How a filter run chooses its level."""

DEFAULT_LEVEL = Fixed()
"""The filter's fitted default level: the choice when none is given."""


def _calibration(calibrate: object) -> str | None:
    """``calibrate`` as ``None`` (a fixed level), ``"val"`` or ``"retrain"``."""
    if calibrate is None or calibrate is False or calibrate == NO_CALIBRATION:
        return None
    if calibrate is True:  # the older flag, and the study YAML's ``calibrate: true``
        return "retrain"
    if calibrate not in CALIBRATIONS:
        raise InputError(
            f"unknown `calibrate` {calibrate!r}; known: {', '.join(CALIBRATIONS)}",
            params=("calibrate",),
        )
    return str(calibrate)


def parse_level_choice(
    level: float | None = None,
    calibrate: str | bool | None = None,
    target: float | None = None,
    *,
    settings: CalibrationSettings | None = None,
) -> LevelChoice:
    """The level choice a front end was given.

    Args:
        level: a fixed level; ``None``: the filter's default (unless calibrated).
        calibrate: ``"val"`` (:class:`PassRate`), ``"retrain"`` (:class:`Retrain`; ``True``,
            the older flag, too); ``None``, ``False`` or ``"off"``: a fixed level.
        target: the pass rate of ``"val"`` (``None``: 0.95); checked when given, used only
            with ``"val"``.
        settings: the retraining sweep's settings (``None``: the defaults), used only with
            ``"retrain"``.

    Raises:
        InputError: both a level and a calibration, an unknown calibration, a level that is
            not a finite number or a target outside (0, 1).
    """
    mode = _calibration(calibrate)
    if mode is not None and level is not None:
        raise InputError(
            "give either `level` or `calibrate`, not both", params=("level", "calibrate")
        )
    if target is not None:
        check_target(_number(target, "target"))
    if mode == "val":
        return PassRate() if target is None else PassRate(target)
    if mode == "retrain":
        return Retrain(settings if settings is not None else CalibrationSettings())
    return Fixed(level)


def level_choice_from_record(data: Mapping[str, Any] | None) -> LevelChoice:
    """A stored level choice (:meth:`Fixed.as_dict` and the others), or the older form: a
    filter config's keys ``level``, ``calibrate`` and ``target`` (an older retraining choice
    had no settings of its own: the defaults). ``None`` or empty: :class:`Fixed`.

    Raises:
        InputError: an unknown stored choice.
    """
    if not data:
        return Fixed()
    if "choice" not in data:
        return parse_level_choice(data.get("level"), data.get("calibrate"), data.get("target"))
    choice = data["choice"]
    if choice == Fixed.name:
        return Fixed(data.get("level"))
    if choice == PassRate.name:
        return PassRate(data["target"])
    if choice == Retrain.name:
        return Retrain(CalibrationSettings.from_dict(data.get("settings") or {}))
    known = ", ".join((Fixed.name, PassRate.name, Retrain.name))
    raise InputError(f"unknown stored level choice {choice!r}; known: {known}")


def check_level_choice(choice: LevelChoice, flt) -> LevelChoice:
    """``choice`` if filter ``flt`` (fitted or not) accepts its levels: a fixed level, or the
    levels a retraining sweep is given, within :meth:`~brain.filters.base.EmbeddingFilter.
    level_limits`.

    Raises:
        InputError: a level outside the filter's range.
        TypeError: ``choice`` is not a level choice (e.g. a bare number: use ``Fixed(0.9)``).
    """
    if isinstance(choice, Fixed):
        levels = [] if choice.level is None else [choice.level]
    elif isinstance(choice, Retrain):
        levels = list(choice.settings.levels or ())
    elif isinstance(choice, PassRate):
        levels = []
    else:
        raise TypeError(
            f"a level choice is Fixed(level), PassRate(target) or Retrain(settings), got {choice!r}"
        )
    for level in levels:
        flt.check_level(level)
    return choice
