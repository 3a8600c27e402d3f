"""GRAD (gradient norm at init): control fails, a positive case holds, ||grad||^2 recomputed from the
full m x m gradient (autograd) on a tiny case."""

from __future__ import annotations

import pytest
import torch

from claims.base import Context
from claims.catalogue import grad as grad_claim
from claims.profiles import get_profile
from rnn_core import init_params
from rnn_core.data import Recipe, make_dataset
from rnn_core.targets import TargetSpec

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
TARGET = TargetSpec(family="random", seed=0)


def recipe(n=6, L=2, d=3, regime="unit", data_seed=5, init_seed=6):
    return Recipe(n=n, L=L, d=d, regime=regime, target=TARGET, data_seed=data_seed, init_seed=init_seed)


def _f(W, A, B, x):
    h = torch.zeros(W.shape[0], dtype=W.dtype)
    for l in range(x.shape[0]):
        h = torch.relu(W @ h + A @ x[l])
    return B @ h


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_negative_control_fails(regime):
    # W ~ N(0, 4/m) at L = 4: the ratio grows like 2^L (measured 1.3-4.2 at m = 2048).
    cell = {"m": 256, "L": 4, "regime": regime, "control": True, "w_var": 4.0}
    out = grad_claim.evaluate(cell, recipe(L=4, regime=regime), CTX)
    assert out.ok is False
    assert out.measured["ratio_max"] > 2.0
    assert "max" in out.reason and "> 2" in out.reason


def test_control_is_not_informative_at_length_two():
    # At L = 2, ||grad||^2 = ||delta_2||^2 ||h_1||^2: neither factor depends on the scale of W, so the
    # control and the paper's init give ratios near 1 (why the control cells sit at L >= 4).
    r = recipe(L=2, regime="unit")
    paper = grad_claim.evaluate({"m": 1024, "L": 2, "regime": "unit"}, r, CTX)
    ctrl = grad_claim.evaluate({"m": 1024, "L": 2, "regime": "unit", "control": True, "w_var": 4.0}, r, CTX)
    assert paper.ok is True and ctrl.ok is True


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_positive_case_holds(regime):
    out = grad_claim.evaluate({"m": 1024, "L": 3, "regime": regime}, recipe(L=3, regime=regime), CTX)
    assert out.ok is True
    assert 0.5 <= out.measured["ratio_min"] <= out.measured["ratio_max"] <= 2.0


def test_measured_ratio_equals_full_gradient_norm():
    r = recipe(n=3, L=4, d=2, regime="unnormalized")
    m = 12
    out = grad_claim.evaluate({"m": m, "L": 4, "regime": "unnormalized"}, r, CTX)
    X, _ = make_dataset(r)
    p = init_params(m, 2, seed=r.init_seed)
    ratios = []
    for i in range(3):
        W = p.W.clone().requires_grad_(True)
        _f(W, p.A, p.B, X[i]).backward()
        G = W.grad  # the m x m gradient, autograd
        total = float((G * G).sum())
        q = torch.cumsum((X[i] * X[i]).sum(dim=1), dim=0)
        h_inf = 0.5 * float(q[:-1].sum())  # (1/2) sum_{l=0}^{L-1} q_l, q_0 = 0
        ratios.append(total / (m * h_inf))
    assert out.measured["ratio_min"] == pytest.approx(min(ratios), rel=1e-10)
    assert out.measured["ratio_max"] == pytest.approx(max(ratios), rel=1e-10)
    c = max(max(ratios), 1.0 / min(ratios))
    assert out.constants["c"] == pytest.approx(c, rel=1e-10)
    # the structured total includes the cross-time terms: dropping them changes the value
    tot, diag = grad_claim.grad_sq_norms(p, X)
    assert float((tot - diag).abs().max()) > 1e-6 * float(tot.abs().max())
    assert 0.0 <= out.measured["cross_frac"] <= 1.0


def test_length_one_is_zero_and_inconclusive():
    X = torch.ones(2, 1, 3, dtype=torch.float64)
    p = init_params(8, 3, seed=0)
    r, _ = grad_claim.gradient_ratios(p, X)
    assert torch.isnan(r).all()  # 0 / 0: W never acts on a length-1 sequence


def test_cells_and_must_hold():
    cells = grad_claim.CLAIM.cells(SMOKE)
    controls = [c for c in cells if c.get("control")]
    assert controls and all(c["w_var"] == 4.0 and c["L"] >= 4 for c in controls)
    must = [c for c in cells if grad_claim.CLAIM.must_hold(c, SMOKE)]
    assert must and all(c["kind"] == "threshold" and 8 in c["asserted_lengths"] for c in must)


def test_an_unmasked_last_delta_fails_the_must_hold_cell():
    # Seeded fault: delta_L = B instead of D_L B. At L = 2, ||grad||^2 = ||delta_2||^2 ||h_1||^2 doubles
    # (||B||^2 ~ m instead of m/2): the ratio sits at the upper bound 2 and the batch maximum exceeds it
    # in most examples, while the correct gradient passes the same examples.
    from claims.catalogue._init_common import two_sided
    from rnn_core.kernels import infinite_ntk_diag

    fails = 0
    for seed in range(6):
        r = recipe(L=2, data_seed=seed, init_seed=seed)
        X, _ = make_dataset(r)
        p = init_params(256, r.d, seed=r.init_seed)
        h1 = torch.relu(X[:, 0] @ p.A.T)  # (n, m)
        ratio = (p.B @ p.B) * (h1 * h1).sum(dim=1) / (p.m * infinite_ntk_diag(X))
        fails += two_sided(ratio, 1.0, 2.0)[0] is False
        good, _ = grad_claim.gradient_ratios(p, X)
        assert two_sided(good, 1.0, 2.0)[0] is True
    assert fails >= 4
