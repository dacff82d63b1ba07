"""The level sweep's bookkeeping (no training, no FiftyOne)."""

from __future__ import annotations

import numpy as np
import pytest

from brain.errors import InputError
from brain.filter_calibration import CalibrationSettings, choose_level, sweep_levels


def test_sweep_and_choice():
    scores = np.array([0.1, 0.4, 0.6, 0.9])
    seen = []

    def evaluate(passed):
        seen.append(passed.copy())
        return [0.5 + 0.1 * passed.sum(), 0.4 + 0.1 * passed.sum()] if passed.sum() < 3 else [0.1]

    sweep = sweep_levels([0.3, 0.5, 0.95], lambda level: scores >= 1 - level, evaluate)
    assert [entry["n_pass"] for entry in sweep] == [1, 2, 4]
    assert sweep[1]["val_f1_mean"] == pytest.approx(0.65)
    assert sweep[1]["val_f1_std"] == pytest.approx(np.std([0.7, 0.6], ddof=1))
    assert choose_level(sweep)["level"] == 0.5
    assert [p.sum() for p in seen] == [1, 2, 4]


def test_ties_prefer_less_spread_then_lower_level():
    sweep = [
        {"level": 0.9, "val_f1_mean": 0.8, "val_f1_std": 0.0},
        {"level": 0.5, "val_f1_mean": 0.8, "val_f1_std": 0.1},
        {"level": 0.7, "val_f1_mean": 0.8, "val_f1_std": 0.0},
    ]
    assert choose_level(sweep)["level"] == 0.7
    with pytest.raises(InputError, match="no levels to calibrate"):
        choose_level([])


def test_settings_record():
    record = CalibrationSettings(levels=(0.5, 0.9), seeds=3).as_dict()
    assert record["levels"] == [0.5, 0.9] and record["seeds"] == 3
