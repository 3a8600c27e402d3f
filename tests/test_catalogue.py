"""Every claim is well-formed under every profile, including the GPU profiles CI never runs.

The standard and full grids only run on big machines; a typo in their settings would otherwise be found
an hour into a GPU run. Here every cell of every profile is built, serialized, keyed, estimated for
memory and given its hypothesis strategy (without drawing from it).
"""

import json

import pytest

from claims.base import NotAsserted, cell_key
from claims.profiles import PROFILES, get_profile
from claims.registry import all_claims

CLAIMS = all_claims()


def test_the_catalogue_is_the_spec_table():
    assert [c.id for c in CLAIMS] == [
        "FWD", "BWD", "GRAD", "NTK-ID", "NTK-CONV", "NTK-PD", "NTK-PD-M", "PERT", "LAZY",
        "GEN-ADD", "GEN-KRR", "CPLX-ADD", "CPLX-NVAR", "RAND-LABEL",
    ]


@pytest.mark.parametrize("profile_name", sorted(PROFILES))
@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_cells_are_well_formed(claim, profile_name):
    profile = get_profile(profile_name)
    cells = claim.cells(profile)
    assert cells, f"{claim.id} has no cells under {profile_name}"
    keys = [cell_key(c) for c in cells]
    assert len(set(keys)) == len(keys), f"{claim.id}: duplicate cells under {profile_name}"
    controls = [c for c in cells if c.get("control")]
    assert controls, f"{claim.id}: no negative-control cell under {profile_name}"
    assert len(controls) < len(cells)
    for cell in cells:
        assert json.loads(json.dumps(cell)) == cell, f"{claim.id}: cell not JSON-safe: {cell}"
        answer = claim.must_hold(cell, profile)
        assert isinstance(answer, (bool, NotAsserted)), f"{claim.id}: must_hold gives {answer!r}"
        assert claim.expectation(cell, profile)[1] == (answer.reason if isinstance(answer, NotAsserted) else None)
        mem = claim.memory_bytes(cell, profile)
        assert isinstance(mem, int) and mem >= 0
        cost = claim.cost(cell, profile)
        assert isinstance(cost, (int, float)) and cost > 0, f"{claim.id}: cost {cost!r}"
        assert claim.strategy(cell, profile) is not None
    assert claim.settings_for(profile) is not None  # every built-in claim knows every built-in profile
    # Profiles differ in scale, so the GPU profiles must not be the smoke grid in disguise.
    if profile_name in ("standard", "full"):
        assert len(cells) >= len(claim.cells(get_profile("smoke")))


@pytest.mark.parametrize("profile_name", ["smoke", "quick"])
@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_every_claim_asserts_something_in_smoke_and_quick(claim, profile_name):
    """SPEC: every claim has at least one must-hold cell in smoke and in quick (and controls in both)."""
    profile = get_profile(profile_name)
    cells = claim.cells(profile)
    must = [c for c in cells if not c.get("control") and claim.must_hold(c, profile) is True]
    assert must, f"{claim.id} asserts nothing in {profile_name}"
    assert any(c.get("control") for c in cells), f"{claim.id} has no control in {profile_name}"


def test_settings_for_an_unknown_profile_is_an_error_naming_the_known_ones():
    import dataclasses

    odd = dataclasses.replace(get_profile("smoke"), name="odd")
    for claim in CLAIMS:
        with pytest.raises(ValueError, match=f"claim {claim.id} has no settings for profile 'odd'; it knows: smoke"):
            claim.settings_for(odd)


@pytest.mark.slow
@pytest.mark.parametrize("profile_name", sorted(PROFILES))
@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_every_cell_draws_a_recipe(claim, profile_name):
    """Every cell's strategy yields a recipe (drawn as the engine draws, nothing evaluated): a cell whose
    parameters cannot exist (e.g. CPLX-NVAR N = 3 with span l_0 = 1) would otherwise end `error`
    only when a GPU run reaches it."""
    from claims.sampling import cell_seed, draw_recipes

    profile = get_profile(profile_name)
    for cell in claim.cells(profile):
        recipes = draw_recipes(claim.strategy(cell, profile), 1, cell_seed(claim.id, cell))
        assert len(recipes) == 1, f"{claim.id} {cell_key(cell)}: no recipe"


def test_not_asserted_is_false_and_carries_its_reason_and_a_string_answer_is_refused():
    """A must_hold answer NotAsserted(reason) is not an assertion (False in a boolean context) and
    gives the record its reason; an empty reason and the bare-string answer are errors naming the fix."""
    import dataclasses

    from claims.registry import get_claim

    assert not NotAsserted("the horizon") and NotAsserted("the horizon").reason == "the horizon"
    with pytest.raises(ValueError, match="non-empty reason"):
        NotAsserted("  ")
    claim = get_claim("FWD")
    cell = next(c for c in claim.cells(get_profile("smoke")) if not c.get("control"))
    why = dataclasses.replace(claim, must_hold=lambda c, p: NotAsserted("because"))
    assert why.expectation(cell, get_profile("smoke")) == (None, "because")
    bare = dataclasses.replace(claim, must_hold=lambda c, p: "because")
    with pytest.raises(TypeError, match="NotAsserted"):
        bare.expectation(cell, get_profile("smoke"))
