"""The size policy is one checked value, resolved by one rule wherever a run shapes images."""

from __future__ import annotations

import numpy as np
import pytest

from brain.errors import InputError
from brain.size_policy import DEFAULT_PAD, SizePolicy


def test_a_policy_is_checked_when_built():
    assert SizePolicy(32.0).size == 32
    with pytest.raises(InputError, match="between 8 and 1024"):
        SizePolicy(4)
    with pytest.raises(InputError, match="unknown padding 'wrap'"):
        SizePolicy(32, "wrap")


def test_the_run_asks_override_what_is_stored():
    stored = SizePolicy(32, "reflect")
    assert SizePolicy.resolve(stored) == stored
    assert SizePolicy.resolve(stored, 48) == SizePolicy(48, "reflect")
    assert SizePolicy.resolve(stored, pad="edge") == SizePolicy(32, "edge")
    assert SizePolicy.resolve(SizePolicy(), 24) == SizePolicy(24, DEFAULT_PAD)
    assert SizePolicy.resolve(SizePolicy()) == SizePolicy()


def test_a_padding_without_any_size_is_refused():
    with pytest.raises(InputError, match="pad edge needs a size") as caught:
        SizePolicy.resolve(SizePolicy(), pad="edge")
    assert caught.value.params == ("pad", "size")
    with pytest.raises(InputError, match="unknown padding"):
        SizePolicy.resolve(SizePolicy(), pad="wrap")


def test_stored_forms_read_back_including_older_ones():
    for policy in (SizePolicy(), SizePolicy(24), SizePolicy(64, "constant:7")):
        assert SizePolicy.from_record(policy.as_record()) == policy
    assert SizePolicy().as_record() is None
    assert SizePolicy.from_record({"size": None, "pad": None}) == SizePolicy()
    assert SizePolicy.from_record({"size": 24}) == SizePolicy(24, DEFAULT_PAD)


def test_fit_pads_and_resizes_or_keeps_images_as_they_are():
    tall = np.zeros((20, 10, 3), dtype=np.uint8)
    wide = np.full((10, 16, 3), 200, dtype=np.uint8)
    assert SizePolicy(12).fit([tall, wide]).shape == (2, 12, 12, 3)
    assert SizePolicy().fit([tall, tall]).shape == (2, 20, 10, 3)
    with pytest.raises(InputError, match="mixed sizes"):
        SizePolicy().fit([tall, wide])
