"""CPLX-ADD: the cells and their expectations, the first-step control fails through the power-law rule
(not by being unreached), a short-memory cell holds, the measured n_eps are what a direct recomputation
with rnn_core.infinite_ntk + rnn_core.linalg.kernel_regression gives, and a kernel that reads the steps in
the wrong order is caught."""

from __future__ import annotations

import pytest
import torch

import rnn_core
from claims.base import NotAsserted
from claims.base import Context
from claims.catalogue import _sample_complexity as sc
from claims.catalogue import cplx_add
from claims.catalogue._sample_complexity import geometric_grid
from claims.profiles import get_profile
from claims.sampling import draw_recipes
from claims.verdict import sequential_verdict
from rnn_core.data import Recipe, make_inputs, test_seed
from rnn_core.linalg import kernel_regression
from rnn_core.targets import Standardizer, make_target

SMOKE = get_profile("smoke")
QUICK = get_profile("quick")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
CONTROL = {"regime": "unit", "target": "first", "f": "z", "d": 2, "L_max": 8, "control": True}
LAST = {"regime": "unit", "target": "last", "f": "z", "d": 2, "L_max": 16}


def _recipe(cell, data_seed, target_seed=0):
    Ls = cplx_add.lengths_for(cell, SMOKE)
    spec = cplx_add.target_at(cell["target"], cell["f"], target_seed, cell["regime"])(Ls[-1])
    return Recipe(n=256, L=Ls[-1], d=cell["d"], regime=cell["regime"], target=spec, data_seed=data_seed)


def test_standard_asserts_exactly_the_cells_its_grid_can_decide():
    # measured at standard (docs/SPEC_NOTES.md): z^2 on unnormalized inputs never reaches n_eps on the grid
    # (inconclusive by construction), f = z on all steps grows faster than a power of L (a finding), and
    # f = z on the last step in the unnormalized regime is U-shaped; every other target cell is asserted
    standard = get_profile("standard")
    cells = [c for c in cplx_add.CLAIM.cells(standard) if not c.get("control")]
    asserted = {(c["target"], c["f"], c["regime"]) for c in cells if cplx_add.CLAIM.must_hold(c, standard) is True}
    assert asserted == {(t, f, g) for t, f in (("last", "z"), ("last", "z2"), ("all", "z2"))
                        for g in ("normalized", "unit")}
    for c in cells:
        answer = cplx_add.CLAIM.must_hold(c, standard)
        if c["f"] == "z2" and c["regime"] == "unnormalized":
            assert isinstance(answer, NotAsserted) and "homogeneous" in answer.reason
        if (c["target"], c["f"]) == ("all", "z"):
            assert isinstance(answer, NotAsserted) and "exponential" in answer.reason


@pytest.mark.parametrize("profile", [SMOKE, QUICK])
def test_cells_have_controls_and_asserted_cells_in_smoke_and_quick(profile):
    cells = cplx_add.CLAIM.cells(profile)
    controls = [c for c in cells if c.get("control")]
    assert controls and all(c["target"] == "first" for c in controls)
    asserted = [c for c in cells if not c.get("control") and cplx_add.CLAIM.must_hold(c, profile) is True]
    assert {c["regime"] for c in asserted} >= {"normalized", "unit"}
    for c in cells:
        assert "m" not in c and "L" not in c  # one cell covers the whole L grid at infinite width
        answer = cplx_add.CLAIM.must_hold(c, profile)
        assert answer is True or (isinstance(answer, NotAsserted) and len(answer.reason) > 40)  # the reason, in words
    unnorm = next(c for c in cells if c["regime"] == "unnormalized" and c["target"] == "last")
    assert isinstance(cplx_add.CLAIM.must_hold(unnorm, profile), NotAsserted)


def test_sequential_test_declares_its_wider_alternative():
    plan = cplx_add.CLAIM.plan(SMOKE)
    assert plan.delta == 0.1 and plan.delta_1 == 0.5
    assert plan.min_examples_to_hold() == 6 and plan.min_examples_to_fail() == 2


def test_settings_are_read_through_the_claim_and_unknown_profiles_raise():
    assert cplx_add.CLAIM.settings_for(SMOKE) is cplx_add.SETTINGS["smoke"]
    with pytest.raises(ValueError):
        cplx_add.CLAIM.settings_for("no-such-profile")


def test_control_fails_through_the_power_law_rule_not_by_being_unreached():
    # Each failing example reaches n_eps at every length and the exponential fits better: the rule rejects
    # a curve it measured. The cell's sequential test ends "fails" on the recipes the runner would draw.
    strat = cplx_add.CLAIM.strategy(CONTROL, SMOKE)
    outs = [cplx_add.CLAIM.evaluate(CONTROL, r, CTX) for r in draw_recipes(strat, 8, 1)]
    failing = [o for o in outs if o.ok is False]
    assert len(failing) >= 4, [(o.ok, o.reason) for o in outs]  # measured ~65% of examples fail
    for o in failing:
        assert o.measured["finite_points"] == len(cplx_add.lengths_for(CONTROL, SMOKE))
        assert "exponential fits better" in o.reason and o.margin > 1.0
        assert o.measured["rss_exp"] < o.measured["rss_power"]
    assert all(o.ok is not None for o in outs)  # never inconclusive: every length reaches n_eps
    decision = sequential_verdict([o.ok for o in outs], cplx_add.CLAIM.plan(SMOKE))
    assert decision.verdict == "fails", decision


def test_short_memory_target_holds_in_the_unit_regime():
    o = cplx_add.CLAIM.evaluate(LAST, _recipe(LAST, 1, 1), CTX)
    assert o.ok is True, (o.measured, o.series)
    assert o.measured["finite_points"] == 7 and o.margin <= 1.0
    assert [row["L"] for row in o.series] == [2, 3, 4, 6, 8, 12, 16]


@pytest.mark.slow
def test_a_kernel_reading_the_steps_in_reverse_order_is_caught(monkeypatch):
    # Wrong input handling in the kernel (X_l order reversed): the last-step target then sits at the
    # longest memory, like the control's first-step target: its n_eps leaves the grid at L = 12 and the
    # curve over the rest fits the exponential better in most examples, so the asserted cell stops holding.
    real = sc.prefix_ntks

    def reversed_steps(X, X2=None, lengths=None, *, block_entries=None):
        out = {}
        for L in lengths:
            Xr = X[:, :L].flip(1)
            out[L] = real(Xr, None if X2 is None else X2[:, :L].flip(1), [L], block_entries=block_entries)[L]
        return out

    cell = {**LAST, "L_max": 12}
    recipes = [_recipe(cell, s, s) for s in range(4)]
    assert all(cplx_add.CLAIM.evaluate(cell, r, CTX).ok is True for r in recipes)  # the real kernel passes
    monkeypatch.setattr(sc, "prefix_ntks", reversed_steps)
    outs = [cplx_add.CLAIM.evaluate(cell, r, CTX) for r in recipes]
    assert sum(o.ok is True for o in outs) <= 2, [(o.ok, o.reason) for o in outs]  # measured: 1 of 4 passes
    assert all(row["n_eps"] is None for o in outs for row in o.series if row["L"] == 12)


def test_measured_n_eps_equals_direct_recomputation():
    cell = {"regime": "unit", "target": "last", "f": "z", "d": 2, "L_max": 6}
    r = _recipe(cell, 3)
    o = cplx_add.CLAIM.evaluate(cell, r, CTX)
    s = cplx_add.CLAIM.settings_for(SMOKE)
    grid = geometric_grid(s["n_min"], s["n_max"])
    Xtr = make_inputs(s["n_max"], 6, 2, regime="unit", seed=3)
    Xte = make_inputs(s["n_test"], 6, 2, regime="unit", seed=test_seed(3))
    for row in o.series:
        L, ne = row["L"], row["n_eps"]
        target = make_target(cplx_add.target_at("last", "z", r.target.seed, "unit")(L), L, 2)

        def ratio(n):
            X, T = Xtr[:n, :L], Xte[:, :L]
            st = Standardizer.fit(target(X))
            yte = st(target(T))
            pred = kernel_regression(rnn_core.infinite_ntk(X), st(target(X)), rnn_core.infinite_ntk(T, X))
            return float(((pred - yte) ** 2).mean() / yte.var(correction=0))

        assert ne is not None
        assert ratio(ne) <= 0.25
        k = grid.index(ne)
        assert all(ratio(n) > 0.25 for n in grid[:k])  # n_eps is the FIRST grid point below 0.25


def test_cost_and_memory_are_positive_and_grow_with_the_profile():
    for c in cplx_add.CLAIM.cells(SMOKE):
        assert 0 < cplx_add.CLAIM.cost(c, SMOKE) < 5.0  # seconds of one smoke example: well under 5
        assert cplx_add.CLAIM.memory_bytes(c, SMOKE) > 0
    standard = get_profile("standard")
    big = next(c for c in cplx_add.CLAIM.cells(standard) if c["target"] == "last")
    small = next(c for c in cplx_add.CLAIM.cells(SMOKE) if c["target"] == "last")
    assert cplx_add.CLAIM.cost(big, standard) > 10 * cplx_add.CLAIM.cost(small, SMOKE)  # L_max 64 vs 16
