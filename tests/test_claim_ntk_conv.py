"""NTK-CONV (empirical NTK tends to H_inf): controls fail, positive cases hold, measurements recomputed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from claims.base import Context
from claims.catalogue import ntk_conv
from claims.profiles import Profile, get_profile
from rnn_core import infinite_ntk, init_params
from rnn_core.data import Recipe, make_dataset
from rnn_core.targets import TargetSpec

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
TARGET = TargetSpec(family="random", seed=0)
# A small grid for slope cells in tests (16x range of widths, cheap).
TINY = Profile(name="test-tiny", widths=(64, 256, 1024), lengths=(2, 4), regimes=("unit",), examples=5,
               shrink_budget=0, n_default=4, d_default=3, n_max=64, description="tests")


def autograd_ntk(p, X):
    """H_m from the full m x m gradients of an explicitly unrolled network (plain autograd)."""
    grads = []
    for x in X:
        W = p.W.clone().requires_grad_(True)
        h = torch.zeros(W.shape[0], dtype=W.dtype)
        for l in range(x.shape[0]):
            h = torch.relu(W @ h + p.A @ x[l])
        (p.B @ h).backward()
        grads.append(W.grad.reshape(-1))
    G = torch.stack(grads)
    return G @ G.T / p.m


def recipe(n=4, L=2, d=3, regime="unit", data_seed=7, init_seed=8):
    return Recipe(n=n, L=L, d=d, regime=regime, target=TARGET, data_seed=data_seed, init_seed=init_seed)


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_negative_control_error_fails(regime):
    # W ~ N(0, 1/m) at L = 4: the network's kernel converges to another (smaller) limit than H_inf.
    cell = {"part": "error", "m": 512, "L": 4, "regime": regime, "control": True, "w_var": 1.0}
    out = ntk_conv.evaluate(cell, recipe(L=4, regime=regime), CTX)
    assert out.ok is False
    assert out.measured["error"] > 0.3  # measured 0.4-0.8
    assert out.measured["diag_ratio"] < 0.8  # the mechanism: the control kernel is smaller


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_negative_control_slope_fails_and_error_stays_above_tol(regime):
    cell = {"part": "slope", "L": 4, "regime": regime, "control": True, "w_var": 1.0}
    ctx = Context(device=torch.device("cpu"), profile=TINY)
    out = ntk_conv.evaluate(cell, recipe(L=4, regime=regime), ctx)
    assert out.ok is False
    assert out.measured["slope"] > ntk_conv.SLOPE_MAX
    assert out.measured["error_min"] > ntk_conv.TOL  # SPEC: above 0.1 at every width
    assert [row["m"] for row in out.series] == list(TINY.widths)


def test_positive_error_case_holds():
    # m = 4096, L = 2: measured errors 0.01-0.1 (normalized regime the smallest).
    cell = {"part": "error", "m": 4096, "L": 2, "regime": "normalized"}
    out = ntk_conv.evaluate(cell, recipe(L=2, regime="normalized"), CTX)
    assert out.ok is True
    assert out.measured["error"] <= 0.1
    assert out.margin == pytest.approx(out.measured["error"] / 0.1)


def test_positive_slope_cases_hold():
    # The fitted slope is noisy per example (see the module docstring: 10-30% of examples miss -0.35 at
    # small grids); over five datasets most must pass and the median must sit near the m^-1/2 rate.
    ctx = Context(device=torch.device("cpu"), profile=TINY)
    outs = [ntk_conv.evaluate({"part": "slope", "L": 2, "regime": "unit"},
                              recipe(L=2, regime="unit", data_seed=s, init_seed=100 + s), ctx) for s in range(5)]
    slopes = [o.measured["slope"] for o in outs]
    assert sum(o.ok is True for o in outs) >= 4, slopes
    assert -0.8 < float(np.median(slopes)) <= ntk_conv.SLOPE_MAX, slopes
    for o in outs:
        assert o.margin == pytest.approx((1024 / 64) ** (o.measured["slope"] + 0.35))
        assert o.ok is (o.measured["slope"] <= ntk_conv.SLOPE_MAX)


def test_error_equals_a_direct_recomputation():
    r = recipe(n=3, L=3, d=2, regime="unnormalized")
    m = 16
    out = ntk_conv.evaluate({"part": "error", "m": m, "L": 3, "regime": "unnormalized"}, r, CTX)
    X, _ = make_dataset(r)
    p = init_params(m, 2, seed=r.init_seed)
    H = autograd_ntk(p, X)
    Hi = infinite_ntk(X)
    err = float((H - Hi).abs().max() / torch.diagonal(Hi).max())
    assert out.measured["error"] == pytest.approx(err, rel=1e-9)
    assert out.measured["diag_ratio"] == pytest.approx(float(torch.diagonal(H).mean() / torch.diagonal(Hi).mean()), rel=1e-9)
    c = float((H * Hi).sum() / (H * H).sum())
    assert out.measured["error_rescaled"] == pytest.approx(float((c * H - Hi).abs().max() / torch.diagonal(Hi).max()), rel=1e-9)
    assert out.ok is (err <= 0.1)


def test_slope_cell_series_equal_a_direct_recomputation():
    r = recipe(n=3, L=2, d=2, regime="unit")
    prof = Profile(name="test-two", widths=(16, 32), lengths=(2,), regimes=("unit",), examples=5,
                   shrink_budget=0, n_default=3, d_default=2, n_max=8, description="tests")
    ctx = Context(device=torch.device("cpu"), profile=prof)
    out = ntk_conv.evaluate({"part": "slope", "L": 2, "regime": "unit"}, r, ctx)
    X, _ = make_dataset(r)
    Hi = infinite_ntk(X)
    k = ntk_conv.seeds_per_width(prof)
    geo = []
    for m, row in zip(prof.widths, out.series):
        errs = []
        for j in range(k):
            p = init_params(m, 2, seed=ntk_conv.width_seed(r.init_seed, m, j))
            errs.append(float((autograd_ntk(p, X) - Hi).abs().max() / torch.diagonal(Hi).max()))
        geo.append(math.exp(np.mean(np.log(errs))))
        assert row["m"] == m
        assert row["error"] == pytest.approx(geo[-1], rel=1e-9)
        assert row["error_min"] == pytest.approx(min(errs), rel=1e-9)
    slope = math.log(geo[1] / geo[0]) / math.log(2.0)
    assert out.measured["slope"] == pytest.approx(slope, rel=1e-9)


def test_fit_slope_recovers_a_power_law_and_rejects_one_width():
    ms = [64, 128, 256, 512]
    slope, stderr = ntk_conv.fit_slope(ms, [3.0 * m ** -0.5 for m in ms])
    assert slope == pytest.approx(-0.5, abs=1e-12) and stderr == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        ntk_conv.fit_slope([64], [0.1])


def test_length_one_is_inconclusive():
    # H_inf = H_m = 0 for L = 1: the relative error is undefined, never a pass.
    cell = {"part": "error", "m": 32, "L": 1, "regime": "unit"}
    out = ntk_conv.evaluate(cell, recipe(L=1), CTX)
    assert out.ok is None and math.isnan(out.margin)


def test_cells_and_must_hold():
    for name in ("smoke", "quick", "standard", "full"):
        profile = get_profile(name)
        cells = ntk_conv.CLAIM.cells(profile)
        parts = {c["part"] for c in cells}
        assert parts == {"error", "slope"}
        controls = [c for c in cells if c.get("control")]
        assert {c["part"] for c in controls} == {"error", "slope"}
        assert all(c["L"] >= 4 and c["w_var"] == 1.0 for c in controls)
        must = [c for c in cells if ntk_conv.CLAIM.must_hold(c, profile)]
        if profile.max_width >= ntk_conv.MUST_HOLD_MIN_WIDTH:
            assert must and all(c["part"] == "error" and c["L"] == 2 and c["m"] == profile.max_width for c in must)
        else:  # SPEC correction: at CPU widths the 0.1 tolerance is not reached at L = 2 (see the module)
            assert not must


def test_bad_part_is_an_error():
    with pytest.raises(ValueError, match="part"):
        ntk_conv.evaluate({"part": "nope", "m": 8, "L": 2, "regime": "unit"}, recipe(), CTX)
