"""CPLX-NVAR: the targets are not additive, the growth rule can fail and hold, the control never holds,
and the series carry N, l0, L, lag."""

from __future__ import annotations

import math

import pytest
import torch

from claims.base import Context
from claims.catalogue import cplx_nvar
from claims.profiles import get_profile
from rnn_core.data import Recipe, make_inputs
from rnn_core.targets import TargetSpec, make_target

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)


def _share_left_by_best_additive_fit(X, y):
    try:
        from rnn_core.targets import additive_fit_residual
    except ImportError:  # pragma: no cover - rnn_core.targets exposes it; keep a local fallback
        additive_fit_residual = None
    if additive_fit_residual is not None:
        return additive_fit_residual(X, y, degree=3)
    n, L, d = X.shape
    cols = [torch.ones(n, dtype=torch.float64)]
    for l in range(L):
        Z = X[:, l]
        cols += [Z[:, i] for i in range(d)] + [Z[:, i] * Z[:, j] for i in range(d) for j in range(i, d)]
    Phi = torch.stack(cols, 1)
    coef = torch.linalg.lstsq(Phi, y[:, None]).solution
    r = y - (Phi @ coef)[:, 0]
    return float(r @ r / ((y - y.mean()) @ (y - y.mean())))


@pytest.mark.parametrize("N,l0", [(2, 1), (3, 2), (2, 3)])
def test_nvar_targets_are_not_additive(N, l0):
    L, d = 5, 2
    X = make_inputs(3000, L, d, regime="unit", seed=1)
    y = make_target(cplx_nvar.nvar_spec(N, l0, "late", "z2", 4, L), L, d)(X)
    # cross terms (beta_i^T X_i)(beta_j^T X_j) carry a fixed share of Var(y) that no sum of per-step
    # functions can fit; 0.2 is well below what the fit leaves here and far above an additive target's ~0
    assert _share_left_by_best_additive_fit(X, y) > 0.2
    y_add = make_target(TargetSpec(family="additive", f="z2", positions=(1, 3, 5), seed=4), L, d)(X)
    assert _share_left_by_best_additive_fit(X, y_add) < 1e-8


def test_span_and_lag_are_what_the_cell_says():
    for anchor, L in (("late", 6), ("early", 6), ("early", 9)):
        t = make_target(cplx_nvar.nvar_spec(2, 3, anchor, "z2", 0, L), L, 2)
        assert t.span == 3
        assert t.lag == (0 if anchor == "late" else L - 1 - 3)
        if anchor == "early":
            assert min(t.positions) == 1


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


def test_negative_control_does_not_hold():
    cells = cplx_nvar.CLAIM.cells(SMOKE)
    ctrl = next(c for c in cells if c.get("control"))
    assert ctrl["N"] >= 4 and ctrl["l0"] >= 6 and ctrl["f"] == "z3"
    Ls = cplx_nvar.curve_lengths(ctrl, SMOKE)
    r = Recipe(n=256, L=Ls[-1], d=2, regime="unit",
               target=cplx_nvar.nvar_spec(4, 6, "late", "z3", 0, Ls[-1]), data_seed=0)
    o = cplx_nvar.CLAIM.evaluate(ctrl, r, CTX)
    assert o.ok is not True
    assert {"N", "l0", "L", "lag", "n_eps"} <= set(o.series[0])


def test_growth_cell_series_is_the_table():
    cell = next(c for c in cplx_nvar.CLAIM.cells(SMOKE) if c["kind"] == "growth")
    L = cell["L"]
    r = Recipe(n=256, L=L, d=2, regime=cell["regime"], target=cplx_nvar.nvar_spec(2, 2, cell["anchor"], "z2", 0, L), data_seed=0)
    o = cplx_nvar.CLAIM.evaluate(cell, r, CTX)
    pairs = [(row["N"], row["l0"]) for row in o.series]
    assert pairs == [p for p in cplx_nvar.GROWTH_TABLE if p[1] + 1 <= L]
    assert all(row["L"] == L and row["lag"] == L - 1 - row["l0"] for row in o.series)
    assert o.ok in (True, False) and not math.isnan(o.margin)
