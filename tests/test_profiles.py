"""Profiles: the SPEC's global axes and name lookup."""

import dataclasses

import pytest

from claims.profiles import PROFILE_NAMES, REGIMES, Profile, get_profile
from claims.verdict import decide_verdict


def test_names_and_axes_match_spec():
    assert PROFILE_NAMES == ("smoke", "quick", "standard", "full")
    smoke, quick, standard, full = (get_profile(n) for n in PROFILE_NAMES)
    assert smoke.widths == (64, 256) and smoke.lengths == (2, 4)
    assert quick.widths == (128, 512, 2048) and quick.lengths == (2, 4, 8, 16)
    assert standard.max_width == 8192 and standard.max_length == 64
    assert full.max_width == 32768 and full.max_length == 256 and full.n_max == 16384
    for p in (smoke, quick, standard, full):
        assert p.regimes == REGIMES


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_enough_examples_to_hold(name):
    p = get_profile(name)
    assert decide_verdict(0, p.examples, 0.1) == "holds"


def test_lookup_is_case_insensitive_and_passes_profiles_through():
    assert get_profile(" Smoke ") is get_profile("smoke")
    p = get_profile("quick")
    assert get_profile(p) is p


def test_unknown_profile_lists_allowed():
    with pytest.raises(ValueError, match="unknown profile 'huge'.*smoke, quick, standard, full"):
        get_profile("huge")


def test_profile_is_frozen_and_validated():
    p = get_profile("smoke")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.examples = 3
    with pytest.raises(ValueError, match="widths"):
        dataclasses.replace(p, widths=(256, 64))
    with pytest.raises(ValueError, match="regimes"):
        dataclasses.replace(p, regimes=("tiny",))
    with pytest.raises(ValueError, match="examples"):
        dataclasses.replace(p, examples=0)
    assert Profile(**{**p.to_dict(), "widths": (8,), "lengths": (2,), "regimes": ("unit",)}).widths == (8,)
