"""One level choice (:mod:`brain.level_choice`): checked when built, one stored form that also
reads the older records, one parser that the command line, the App and the study YAML share, and
filters that take no level of their own."""

from __future__ import annotations

import math

import pytest

from brain.errors import InputError
from brain.filter_calibration import CalibrationSettings
from brain.filters import FILTERS, make_filter
from brain.level_choice import (
    DEFAULT_LEVEL,
    Fixed,
    PassRate,
    Retrain,
    check_level_choice,
    level_choice_from_record,
    parse_level_choice,
)
from brain.settings import TrainSettings
from curation.experiment import parse_config
from curation.runs.filter import FilterConfig

SWEEP = CalibrationSettings(levels=(0.3, 0.6), seeds=2, train=TrainSettings(epochs=1, size=16))
CHOICES = [Fixed(), Fixed(0.9), PassRate(), PassRate(0.8), Retrain(), Retrain(SWEEP)]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Fixed(math.nan), "`level` must be a finite number, got nan"),
        (lambda: Fixed(math.inf), "`level` must be a finite number, got inf"),
        (lambda: Fixed("0.9"), "`level` must be a number, got '0.9'"),
        (lambda: Fixed(True), "`level` must be a number, got True"),
        (lambda: PassRate(1.0), "calibration `target` must lie strictly between 0 and 1, got 1.0"),
        (lambda: PassRate(0), "calibration `target` must lie strictly between 0 and 1, got 0"),
        (lambda: Retrain(CalibrationSettings(seeds=0)), "at least one seed, got 0"),
    ],
)
def test_each_choice_is_checked_when_built(build, message):
    with pytest.raises(InputError) as error:
        build()
    assert message in error.value.template


@pytest.mark.parametrize("choice", CHOICES)
def test_the_stored_form_reads_back_to_the_same_choice(choice):
    stored = choice.as_dict()
    assert stored["choice"] == choice.name
    assert level_choice_from_record(stored) == choice
    assert FilterConfig.from_record(FilterConfig(level_choice=choice).to_record()).level_choice == (
        choice
    )


def test_the_stored_form_is_one_small_dict():
    assert Fixed(0.9).as_dict() == {"choice": "fixed", "level": 0.9}
    assert Fixed().as_dict() == {"choice": "fixed", "level": None}
    assert PassRate(0.8).as_dict() == {"choice": "val", "target": 0.8}
    stored = Retrain(SWEEP).as_dict()
    assert stored["choice"] == "retrain" and stored["settings"] == SWEEP.as_dict()
    with pytest.raises(InputError, match=r"unknown stored level choice 'magic'"):
        level_choice_from_record({"choice": "magic"})


@pytest.mark.parametrize(
    "old, choice",
    [
        # as today's FilterConfig wrote them: level, calibrate ("val" / "retrain" / None), target
        ({"level": 0.9, "calibrate": None, "target": None}, Fixed(0.9)),
        ({"level": None, "calibrate": None, "target": None}, Fixed()),
        ({"level": None, "calibrate": "val", "target": 0.9}, PassRate(0.9)),
        ({"level": None, "calibrate": "retrain", "target": None}, Retrain()),
        ({"calibrate": True}, Retrain()),  # the older flag
        ({"calibrate": False, "level": 0.5}, Fixed(0.5)),
        ({}, Fixed()),
    ],
)
def test_older_records_read_back_to_the_same_choice(old, choice):
    assert level_choice_from_record(old) == choice
    record = {"method": "gmm_full", "params": {"pca_components": 3}, "seed": 0, **old}
    config = FilterConfig.from_record(record)
    assert config.level_choice == choice and config.method == "gmm_full"
    assert config.to_record()["level_choice"] == choice.as_dict()
    assert not {"level", "calibrate", "target"} & set(config.to_record())


def test_progress_is_not_part_of_the_choice():
    shown = CalibrationSettings(levels=(0.5,), progress=True)
    assert Retrain(shown) == Retrain(CalibrationSettings(levels=(0.5,)))
    assert CalibrationSettings.from_dict(shown.as_dict()) == shown


def _study(section: dict):
    return parse_config({"dataset": "any", "filter": {"method": "gmm_full", **section}}).filter


@pytest.mark.parametrize(
    "level, calibrate, target, choice",
    [
        (None, None, None, Fixed()),
        (0.9, None, None, Fixed(0.9)),
        (None, "val", None, PassRate()),
        (None, "val", 0.8, PassRate(0.8)),
        (None, "retrain", None, Retrain(SWEEP)),
    ],
)
def test_the_front_ends_build_the_same_choice(level, calibrate, target, choice):
    """The parser is what the CLI and the App call; the study YAML reads the same keys."""
    assert parse_level_choice(level, calibrate, target, settings=SWEEP) == choice
    section = {"level": level, "calibrate": calibrate or False, "target": target}
    assert _study(section).level_choice(SWEEP) == choice


def test_every_spelling_of_no_calibration_is_a_fixed_level():
    for calibrate in (None, False, "off"):
        assert parse_level_choice(0.9, calibrate) == Fixed(0.9)
    assert parse_level_choice(None, True) == parse_level_choice(None, "retrain") == Retrain()
    assert _study({"calibrate": True}).level_choice() == Retrain()
    assert parse_level_choice() == DEFAULT_LEVEL == Fixed()


@pytest.mark.parametrize("calibrate", ["val", "retrain", True])
def test_a_level_and_a_calibration_is_one_error(calibrate):
    with pytest.raises(InputError) as error:
        parse_level_choice(0.5, calibrate)
    assert str(error.value) == "give either level or calibrate, not both"
    assert error.value.render({"level": "--level", "calibrate": "--calibrate"}) == (
        "give either --level or --calibrate, not both"
    )
    with pytest.raises(InputError, match=r"^filter: give either level or calibrate, not both$"):
        _study({"level": 0.5, "calibrate": calibrate})


def test_bad_calibrations_and_targets():
    with pytest.raises(InputError, match=r"^unknown calibrate 'test'; known: val, retrain$"):
        parse_level_choice(None, "test")
    with pytest.raises(InputError, match=r"^filter: unknown calibrate 'test'"):
        _study({"calibrate": "test"})
    with pytest.raises(InputError) as error:
        parse_level_choice(None, "val", 1.2)
    assert error.value.params == ("target",)  # the CLI says --target, the App flags the field
    with pytest.raises(InputError, match=r"^filter: the calibration target must lie strictly"):
        _study({"calibrate": "val", "target": 1.2})


def test_a_filter_checks_the_levels_of_a_choice():
    flt = make_filter("gmm_full")
    assert check_level_choice(Fixed(0.5), flt) == Fixed(0.5)
    assert check_level_choice(PassRate(), flt) == PassRate()
    with pytest.raises(InputError, match=r"level must lie strictly between 0 and 1, got 1.5"):
        check_level_choice(Fixed(1.5), flt)
    with pytest.raises(InputError, match=r"got 1.5"):
        check_level_choice(Retrain(CalibrationSettings(levels=(0.5, 1.5))), flt)
    with pytest.raises(TypeError, match=r"Fixed\(level\)"):
        check_level_choice(0.5, flt)
    with pytest.raises(InputError, match=r"^filter: level must lie strictly between 0 and 1"):
        _study({"level": 1.5})


@pytest.mark.parametrize("name", FILTERS.names())
def test_filters_take_no_level_of_their_own(name):
    assert "level" not in make_filter(name).get_params()
    with pytest.raises(TypeError, match=r"level|takes no arguments"):
        FILTERS.get(name)(level=0.9)
    with pytest.raises(InputError) as error:
        make_filter(name, level=0.9)
    assert str(error.value).startswith(
        f"unknown parameter(s) level for filter {name!r} (the level is chosen per run: level or a "
        "calibration); valid: "
    )
    assert "\n" not in str(error.value)
