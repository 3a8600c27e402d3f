"""FWD (forward stability at init): control fails, a positive case holds, measurements recomputed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from claims.base import Context
from claims.catalogue import _init_common as common
from claims.catalogue import fwd
from rnn_core.numerics import guarded_ratio
from claims.profiles import get_profile
from rnn_core import init_params
from rnn_core.data import Recipe, make_dataset
from rnn_core.targets import TargetSpec

SMOKE = get_profile("smoke")
QUICK = get_profile("quick")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
TARGET = TargetSpec(family="random", seed=0)


def recipe(n=6, L=2, d=3, regime="unit", data_seed=1, init_seed=2, directions="sphere"):
    return Recipe(n=n, L=L, d=d, regime=regime, directions=directions, target=TARGET,
                  data_seed=data_seed, init_seed=init_seed)


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_negative_control_fails(regime):
    # W ~ N(0, 4/m): ||h_4||^2 ~ sum_k 2^(4-k) ||X_k||^2, at least ~3.75 q_4 in the unit regime.
    cell = {"m": 256, "L": 4, "regime": regime, "control": True, "w_var": 4.0}
    out = fwd.evaluate(cell, recipe(L=4, regime=regime), CTX)
    assert out.ok is False
    assert out.measured["ratio_max"] > 2.0
    assert out.margin > 1.0
    assert out.reason.startswith("||h_l||^2 / q_l max")  # the failing side is named


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_positive_case_holds(regime):
    # m = 1024: each ratio's relative spread is ~ sqrt(5 / m) * sqrt(l) ~ 0.1, far inside [1/2, 2].
    out = fwd.evaluate({"m": 1024, "L": 3, "regime": regime}, recipe(L=3, regime=regime), CTX)
    assert out.ok is True
    assert out.margin < 1.0
    assert 0.5 <= out.measured["ratio_min"] <= out.measured["ratio_max"] <= 2.0


def test_measured_quantities_equal_a_direct_recomputation():
    r = recipe(n=3, L=3, d=2, regime="unnormalized")
    cell = {"m": 16, "L": 3, "regime": "unnormalized"}
    out = fwd.evaluate(cell, r, CTX)
    X, _ = make_dataset(r)
    p = init_params(16, 2, seed=r.init_seed)
    ratios = []
    for i in range(3):  # the recursion written out, one sequence at a time
        h = torch.zeros(16, dtype=torch.float64)
        q = 0.0
        row = []
        for l in range(3):
            h = torch.relu(p.W @ h + p.A @ X[i, l])
            q += float(X[i, l] @ X[i, l])
            row.append(float(h @ h) / q)
        ratios.append(row)
    flat = [v for row in ratios for v in row]
    assert out.measured["ratio_min"] == pytest.approx(min(flat), rel=1e-12)
    assert out.measured["ratio_max"] == pytest.approx(max(flat), rel=1e-12)
    c = max(max(flat), 1.0 / min(flat))
    assert out.constants["c"] == pytest.approx(c, rel=1e-12)
    assert out.margin == pytest.approx(c / 2.0, rel=1e-12)
    assert out.ok is (c <= 2.0)
    # series: per layer the min and the max over the batch
    for l in range(3):
        col = [ratios[i][l] for i in range(3)]
        rows = {row["stat"]: row["ratio"] for row in out.series if row["l"] == l + 1}
        assert rows["min"] == pytest.approx(min(col), rel=1e-12)
        assert rows["max"] == pytest.approx(max(col), rel=1e-12)


def test_zero_prefix_is_no_information_not_a_failure():
    # X_1 = 0: q_1 = 0 and h_1 = 0 exactly, so l = 1 is 0/0 (skipped); the other layers are measured.
    X = torch.randn(2, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X[:, 0] = 0.0
    p = init_params(512, 2, seed=0)
    r = fwd.forward_ratios(p, X)
    assert torch.isnan(r[:, 0]).all()
    assert torch.isfinite(r[:, 1:]).all()
    ok, *_ = common.two_sided(r, 1.0, 2.0)
    assert ok is True
    # a nonzero network output on a zero prefix would be a violation (x / 0 = inf)
    assert guarded_ratio(torch.tensor([1.0]), torch.tensor([0.0]), zero_by_zero=math.nan).item() == math.inf


def test_cells_controls_and_must_hold():
    for profile in (SMOKE, QUICK):
        cells = fwd.CLAIM.cells(profile)
        main = [c for c in cells if not c.get("control") and c.get("kind") != "search"]
        controls = [c for c in cells if c.get("control")]
        # one threshold search per regime, asserted at every length (the recurrence acts from L = 2 on)
        assert [c["kind"] for c in main] == ["threshold"] * len(profile.regimes)
        assert {c["regime"] for c in main} == {c["regime"] for c in controls} == set(profile.regimes)
        assert all(c["L"] >= 4 and c["w_var"] == 4.0 and c["m"] == profile.max_width for c in controls)
        must = [c for c in cells if fwd.CLAIM.must_hold(c, profile)]
        assert must == main
        assert all({2, 4, 8} <= set(c["asserted_lengths"]) <= set(c["lengths"]) for c in must)
        assert not any(fwd.CLAIM.must_hold(c, profile) for c in controls)
    quick = [c for c in fwd.CLAIM.cells(QUICK) if c.get("kind") == "threshold"]
    assert all(max(c["asserted_lengths"]) == max(c["lengths"]) == 8 for c in quick)


@settings(max_examples=5, deadline=None, database=None)
@given(st.data())
def test_strategy_pins_the_cell(data):
    cell = {"m": 64, "L": 4, "regime": "normalized"}
    r = data.draw(fwd.CLAIM.strategy(cell, SMOKE))
    assert (r.n, r.L, r.regime) == (fwd.CLAIM.settings_for(SMOKE)["n"], 4, "normalized")
    out = fwd.evaluate(cell, r, CTX)
    assert out.ok in (True, False) and math.isfinite(out.margin)


def test_settings_and_cost_per_profile():
    for name in ("smoke", "quick", "standard", "full"):
        assert fwd.CLAIM.settings_for(name)["n"] >= 1
    with pytest.raises(ValueError, match="no settings"):
        fwd.CLAIM.settings_for("nope")
    # the cost grows like m^2 (the forward pass and the init dominate at large width)
    small = fwd.CLAIM.cost({"m": 256, "L": 4, "regime": "unit"}, QUICK)
    large = fwd.CLAIM.cost({"m": 2048, "L": 4, "regime": "unit"}, QUICK)
    assert 8 < large / small < 64  # (2048/256)^2 = 64 for the flops; the fixed per-example overhead lowers it


def test_a_wrong_a_variance_fails_the_must_hold_cell():
    # Seeded fault: A ~ N(0, 1/m) halves ||h_1||^2 / q_1 (limit 1/2, the lower bound), so with n = 6
    # sequences the batch minimum falls below 1/2 in most examples of the must-hold cell (L = 2).
    cell = {"m": 256, "L": 2, "regime": "unit"}
    fails = 0
    for seed in range(6):
        r = recipe(L=2, data_seed=seed, init_seed=seed)
        p = init_params(256, r.d, seed=r.init_seed)
        p = type(p)(W=p.W, A=p.A / math.sqrt(2.0), B=p.B)
        X, _ = make_dataset(r)
        ok, *_ = common.two_sided(fwd.forward_ratios(p, X), 1.0, 2.0)
        fails += ok is False
        assert fwd.evaluate(cell, r, CTX).ok is True  # the correct init passes the same examples
    assert fails >= 4
