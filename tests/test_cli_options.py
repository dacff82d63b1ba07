"""The one ``--param NAME=VALUE`` parser that ``curate filter`` and ``curate generate`` share."""

from __future__ import annotations

import pytest

from curation.cli.options import parse_params
from curation.errors import CurateError


def test_values_are_json_then_yaml_then_text():
    pairs = ("lr=2e-4", "preset=cpu", "flip=true", "sizes=[1, 2]", "opts={a: 1}", "n-steps=3")
    assert parse_params(pairs) == {
        "lr": 2e-4,
        "preset": "cpu",
        "flip": True,
        "sizes": [1, 2],
        "opts": {"a": 1},
        "n_steps": 3,
    }
    assert parse_params(("text=a: b: c",)) == {"text": "a: b: c"}  # not YAML either: kept


@pytest.mark.parametrize("pair", ["lr", "=3", " =3"])
def test_a_pair_without_a_name_or_value_is_one_line_error(pair):
    with pytest.raises(CurateError, match="--param takes NAME=VALUE"):
        parse_params((pair,))
