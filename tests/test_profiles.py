"""Profiles: the SPEC's global axes and name lookup."""

import dataclasses

import pytest

from claims.profiles import PROFILE_NAMES, REGIMES, Profile, get_profile


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
def test_the_budget_lets_a_claim_hold_with_two_failures(name):
    # delta = 0.1: 12 passes in a row hold; with two failures the test needs 23 more passes, which the
    # smoke budget of 20 cannot give (inconclusive), every other profile can
    from claims.verdict import TestPlan, sequential_verdict

    p = get_profile(name)
    plan = TestPlan.of(0.1, budget=p.examples)
    assert sequential_verdict([True] * p.examples, plan).verdict == "holds"
    two = sequential_verdict([False, False] + [True] * p.examples, plan).verdict
    assert two == ("inconclusive" if name == "smoke" else "holds")
    assert (p.examples, name) in ((20, "smoke"), (40, "quick"), (60, "standard"), (100, "full"))


def test_register_profile():
    from claims.profiles import PROFILES, register_profile

    tiny = dataclasses.replace(get_profile("smoke"), name="tiny-test", widths=(8,), lengths=(2,))
    try:
        assert register_profile(tiny) is tiny and get_profile("TINY-test") is tiny
        with pytest.raises(ValueError, match="already registered"):
            register_profile(dataclasses.replace(tiny, examples=3))
    finally:
        PROFILES.pop("tiny-test", None)


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
