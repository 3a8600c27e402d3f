"""BWD (backward stability at init): control fails, a positive case holds, deltas recomputed by autograd."""

from __future__ import annotations

import pytest
import torch

from claims.base import Context
from claims.catalogue import _init_common as common
from claims.catalogue import bwd
from claims.profiles import get_profile
from rnn_core import init_params
from rnn_core.data import Recipe, make_dataset
from rnn_core.targets import TargetSpec

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
TARGET = TargetSpec(family="random", seed=0)


def recipe(n=6, L=2, d=3, regime="unit", data_seed=3, init_seed=4):
    return Recipe(n=n, L=L, d=d, regime=regime, target=TARGET, data_seed=data_seed, init_seed=init_seed)


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_negative_control_fails(regime):
    # W ~ N(0, 1/m): ||delta_1||^2 / m -> (1/2)^4 = 1/16 at L = 4, far below 1/4.
    cell = {"m": 256, "L": 4, "regime": regime, "control": True, "w_var": 1.0}
    out = bwd.evaluate(cell, recipe(L=4, regime=regime), CTX)
    assert out.ok is False
    assert out.measured["ratio_min"] < 0.25
    assert out.reason.startswith("||delta_l||^2 / m min")


def test_control_vanishes_geometrically():
    # The control's mechanism, not just its verdict: each backward step halves ||delta||^2 (wide net).
    X, _ = make_dataset(recipe(n=4, L=5, regime="unit"))
    p = init_params(2048, 3, seed=0, w_std_scale=(0.5) ** 0.5)
    r = bwd.backward_ratios(p, X).mean(dim=0)  # l = 1..5
    steps = (r[1:] / r[:-1]).tolist()
    assert all(1.6 < s < 2.5 for s in steps), steps  # limit 2; spread ~ sqrt(1/m) per step, loose bound
    assert r[-1].item() == pytest.approx(0.5, abs=0.05)  # delta_L = D_L B does not depend on W


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_positive_case_holds(regime):
    out = bwd.evaluate({"m": 1024, "L": 3, "regime": regime}, recipe(L=3, regime=regime), CTX)
    assert out.ok is True
    assert 0.25 <= out.measured["ratio_min"] <= out.measured["ratio_max"] <= 1.0


def test_measured_quantities_equal_autograd_deltas():
    # delta_l = df/dg_l recomputed with autograd on an explicitly unrolled network (independent of the
    # backward recursion in rnn_core.model).
    r = recipe(n=3, L=3, d=2, regime="unnormalized")
    m = 16
    out = bwd.evaluate({"m": m, "L": 3, "regime": "unnormalized"}, r, CTX)
    X, _ = make_dataset(r)
    p = init_params(m, 2, seed=r.init_seed)
    ratios = []
    for i in range(3):
        h = torch.zeros(m, dtype=torch.float64)
        gs = []
        for l in range(3):
            g = (p.W @ h + p.A @ X[i, l]).detach().requires_grad_(True) if l == 0 else p.W @ h + p.A @ X[i, l]
            g.retain_grad()
            gs.append(g)
            h = torch.relu(g)
        f = p.B @ h
        f.backward()
        ratios.extend(float(g.grad @ g.grad) / m for g in gs)
    assert out.measured["ratio_min"] == pytest.approx(min(ratios), rel=1e-12)
    assert out.measured["ratio_max"] == pytest.approx(max(ratios), rel=1e-12)
    c = max(max(ratios) / 0.5, 0.5 / min(ratios))
    assert out.constants["c"] == pytest.approx(c, rel=1e-12)
    assert out.margin == pytest.approx(c / 2.0, rel=1e-12)


def test_cells_and_must_hold():
    cells = bwd.CLAIM.cells(SMOKE)
    controls = [c for c in cells if c.get("control")]
    assert controls and all(c["w_var"] == 1.0 and c["L"] >= 4 for c in controls)
    must = [c for c in cells if bwd.CLAIM.must_hold(c, SMOKE)]
    assert must and all(c["kind"] == "threshold" and 8 in c["asserted_lengths"] and not c.get("control")
                        for c in must)


def test_a_backward_pass_without_the_relu_mask_fails_the_must_hold_cell():
    # Seeded fault: delta_l = W^T delta_{l+1} without D_l. At L = 2, ||delta_1||^2 / m -> 1 (the upper
    # bound) instead of 1/2, so the batch maximum exceeds 1 in most examples; the correct backward pass
    # keeps every ratio well inside [1/4, 1] on the same data.
    from rnn_core.model import backward_deltas, forward

    fails = 0
    for seed in range(6):
        r = recipe(L=2, data_seed=seed, init_seed=seed)
        X, _ = make_dataset(r)
        p = init_params(256, r.d, seed=r.init_seed)
        fw = forward(p, X)
        good = backward_deltas(p, fw).transpose(0, 1)  # (L, n, m): good[l-1] = delta_l
        broken = good.clone()
        broken[0] = good[1] @ p.W  # the mask D_1 left out
        ratios = lambda d: (d.pow(2).sum(dim=2) / p.m).T  # noqa: E731
        assert common.two_sided(ratios(good), bwd.LIMIT, 2.0)[0] is True
        fails += common.two_sided(ratios(broken), bwd.LIMIT, 2.0)[0] is False
    assert fails >= 4
