"""CPLX-NVAR: the targets are not additive, the growth rule can fail and hold, the control fails through
the power-law rule (not by being unreached), the SPEC's cells are asserted or say why not, and the series
carry N, l0, L, lag."""

from __future__ import annotations

import math

import pytest
import torch

from claims.base import NotAsserted
from claims.base import Context
from claims.catalogue import cplx_nvar
from claims.profiles import get_profile
from claims.sampling import draw_recipes
from claims.verdict import sequential_verdict
from rnn_core.data import Recipe, make_inputs
from rnn_core.targets import TargetSpec, additive_fit_residual, make_target

SMOKE = get_profile("smoke")
QUICK = get_profile("quick")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)


@pytest.mark.parametrize("N,l0", [(2, 1), (3, 2), (2, 3)])
def test_nvar_targets_are_not_additive(N, l0):
    L, d = 5, 2
    X = make_inputs(3000, L, d, regime="unit", seed=1)
    y = make_target(cplx_nvar.nvar_spec(N, l0, "late", "z2", 4, L, regime="unit"), L, d)(X)
    # cross terms (beta_i^T X_i)(beta_j^T X_j) carry a fixed share of Var(y) that no sum of per-step
    # functions can fit; 0.2 is well below what the fit leaves here and far above an additive target's ~0
    assert additive_fit_residual(X, y, degree=3) > 0.2
    y_add = make_target(TargetSpec(family="additive", f="z2", positions=(1, 3, 5), seed=4), L, d)(X)
    assert additive_fit_residual(X, y_add, degree=3) < 1e-8


@pytest.mark.parametrize("regime,first", [("unit", 1), ("unnormalized", 1), ("normalized", 2)])
def test_span_and_lag_are_what_the_cell_says(regime, first):
    # the early anchor starts on the first informative step: X_1 = e_d is the same for every sequence in
    # the normalized regime
    for anchor, L in (("late", 6), ("early", 6), ("early", 9)):
        t = make_target(cplx_nvar.nvar_spec(2, 3, anchor, "z2", 0, L, regime=regime), L, 2)
        assert t.span == 3
        assert t.lag == (0 if anchor == "late" else L - first - 3)
        if anchor == "early":
            assert min(t.positions) == first


@pytest.mark.parametrize("profile", ["smoke", "quick", "standard", "full"])
def test_no_target_of_any_cell_is_constant_on_its_inputs(profile):
    # a target on X_1 alone is constant in the normalized regime; standard's early-anchor growth table once
    # had one ((N, l_0) = (1, 0)), and its n_eps "not reached" read as a failure of the claim
    prof = get_profile(profile)
    for cell in cplx_nvar.CLAIM.cells(prof):
        if cell["kind"] == "growth":
            L, entries = cell["L"], cplx_nvar._table(cell)
        else:
            L, entries = cplx_nvar.curve_lengths(cell, prof)[0], [(cell["N"], cell["l0"])]
        X = make_inputs(64, L, cell["d"], regime=cell["regime"], seed=0)
        for N, l0 in entries:
            y = make_target(cplx_nvar.nvar_spec(N, l0, cell["anchor"], cell["f"], 0, L, regime=cell["regime"]),
                            L, cell["d"])(X)
            # a constant target has std 0 up to float64 rounding (~1e-17); the smallest informative one, z^2 of
            # steps of norm eps = 0.05 (normalized regime), still varies by ~1e-3
            assert float(y.std()) > 1e-9, (profile, cell, N, l0)


def test_growth_rule_holds_on_growing_tables_and_fails_on_shrinking_ones():
    grow = {(1, 0): 16.0, (2, 1): 32.0, (2, 2): 40.0, (3, 2): 90.0}
    ok, margin, comps = cplx_nvar.growth_rule(grow)
    assert ok and margin <= 1.0 and len(comps) == 2  # (2,1)->(2,2) along l0, (2,2)->(3,2) along N
    shrink = {(1, 0): 400.0, (2, 1): 150.0, (2, 2): 100.0, (3, 2): 60.0}
    ok, margin, _ = cplx_nvar.growth_rule(shrink)
    assert not ok and margin > 1.0
    # one grid step of noise (x 0.6) is tolerated, but the end-to-end growth is required
    ok, _, _ = cplx_nvar.growth_rule({(1, 0): 16.0, (2, 1): 10.0, (2, 2): 40.0})
    assert ok
    ok, _, _ = cplx_nvar.growth_rule({(1, 0): 16.0, (2, 1): 16.0, (2, 2): 16.0})
    assert not ok  # flat: no growth
    # not reached counts as +inf: growing into "not reached" holds, coming out of it fails
    assert cplx_nvar.growth_rule({(1, 0): 16.0, (2, 1): None})[0]
    assert not cplx_nvar.growth_rule({(1, 0): None, (2, 1): 16.0})[0]


@pytest.mark.parametrize("profile", [SMOKE, QUICK])
def test_spec_cells_are_asserted_or_say_why_not(profile):
    cells = cplx_nvar.CLAIM.cells(profile)
    asserted = [c for c in cells if not c.get("control") and cplx_nvar.CLAIM.must_hold(c, profile) is True]
    # the SPEC's "the CPLX-ADD rule in L holds when N <= 2 or l_0 <= 1": asserted in smoke and quick
    assert any(c["kind"] == "curve" and (c["N"] <= 2 or c["l0"] <= 1) for c in asserted)
    assert any(c["kind"] == "growth" for c in asserted)
    for c in cells:
        if c.get("control"):
            assert not (c["N"] <= 2 or c["l0"] <= 1)  # the control lies outside the SPEC's learnable set
            continue
        answer = cplx_nvar.CLAIM.must_hold(c, profile)
        in_spec = c["kind"] == "growth" or c["N"] <= 2 or c["l0"] <= 1
        assert (answer is True or isinstance(answer, NotAsserted)) if in_spec else answer is False
        if isinstance(answer, NotAsserted):
            assert len(answer.reason) > 40 and not answer.reason.startswith("not asserted")  # the report adds it
    late_growth = {"kind": "growth", "regime": "unit", "anchor": "late", "f": "z2", "d": 2, "L": 6}
    assert isinstance(cplx_nvar.CLAIM.must_hold(late_growth, profile), NotAsserted)


def test_standard_asserts_exactly_the_cells_its_grid_can_decide():
    # the SPEC's learnable set with lag 0 (late anchor) in the normalized and unit regimes, with the early
    # anchor (l_1 = 2) in the normalized regime, and the early-anchor growth table in every regime
    # (docs/SPEC_NOTES.md has the standard measurements)
    standard = get_profile("standard")
    cells = [c for c in cplx_nvar.CLAIM.cells(standard) if not c.get("control")]
    asserted = {(c["kind"], c["regime"], c["anchor"], c.get("N"), c.get("l0"))
                for c in cells if cplx_nvar.CLAIM.must_hold(c, standard) is True}
    assert asserted == {("curve", "normalized", "late", 2, 1), ("curve", "unit", "late", 2, 1),
                        ("curve", "unit", "late", 2, 3), ("curve", "normalized", "early", 2, 1)} | {("growth", g, "early", None, None)
                                                             for g in ("normalized", "unit", "unnormalized")}


def test_control_fails_through_the_power_law_rule_not_by_being_unreached():
    ctrl = next(c for c in cplx_nvar.CLAIM.cells(SMOKE) if c.get("control"))
    assert ctrl["N"] >= 3 and ctrl["l0"] >= 2 and ctrl["anchor"] == "early"
    outs = [cplx_nvar.CLAIM.evaluate(ctrl, r, CTX) for r in draw_recipes(cplx_nvar.CLAIM.strategy(ctrl, SMOKE), 3, 2)]
    for o in outs:
        # measured: every example fails, 12 of 12, with rss_exp 2-10x below rss_power
        assert o.ok is False, (o.reason, o.series)
        assert o.measured["finite_points"] >= 4 and "exponential fits better" in o.reason
        assert {"N", "l0", "L", "lag", "n_eps"} <= set(o.series[0])
        assert [row["lag"] for row in o.series] == [L - 1 - ctrl["l0"] for L in ctrl["lengths"]]
    assert sequential_verdict([o.ok for o in outs], cplx_nvar.CLAIM.plan(SMOKE)).verdict == "fails"


def test_asserted_late_curve_holds_on_an_example():
    cell = next(c for c in cplx_nvar.CLAIM.cells(SMOKE)
                if c["kind"] == "curve" and not c.get("control") and cplx_nvar.CLAIM.must_hold(c, SMOKE) is True)
    r = draw_recipes(cplx_nvar.CLAIM.strategy(cell, SMOKE), 1, 3)[0]
    o = cplx_nvar.CLAIM.evaluate(cell, r, CTX)
    assert o.ok is True and o.margin <= 1.0, (o.reason, o.series)
    assert all(row["lag"] == 0 for row in o.series)


def test_growth_cell_series_is_the_table():
    cell = next(c for c in cplx_nvar.CLAIM.cells(SMOKE) if c["kind"] == "growth")
    L = cell["L"]
    r = Recipe(n=256, L=L, d=2, regime=cell["regime"],
               target=cplx_nvar.nvar_spec(2, 2, cell["anchor"], "z2", 0, L, regime=cell["regime"]), data_seed=0)
    o = cplx_nvar.CLAIM.evaluate(cell, r, CTX)
    pairs = [(row["N"], row["l0"]) for row in o.series]
    assert pairs == [p for p in cplx_nvar.GROWTH_TABLE if p[1] + 1 <= L]
    assert all(row["L"] == L and row["lag"] == L - 1 - row["l0"] for row in o.series)
    assert o.ok in (True, False) and not math.isnan(o.margin)
