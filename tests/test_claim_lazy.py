"""LAZY: the linearized formulas behind the pass rule, the measured drifts, and the controls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnn_core
from claims.base import Context
from claims.catalogue import lazy
from claims.profiles import get_profile
from rnn_core.data import Recipe, TargetSpec, make_inputs


def _psd(n, seed, cond=50.0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = np.geomspace(1.0, 1.0 / cond, n)
    return (Q * ev) @ Q.T, ev[::-1].copy(), rng.standard_normal(n)


def test_linearized_loss_matches_explicit_iteration():
    n = 7
    H, _, y = _psd(n, 0)
    evals, V = np.linalg.eigh(H)
    eta_m = 1.0 / evals[-1]
    c = (V.T @ y) ** 2
    r = -y.copy()  # residual f_c - y with f_c(W_0) = 0
    curve = lazy.linearized_loss(evals, c, eta_m, np.arange(30))
    for t in range(30):
        assert curve[t] == pytest.approx(0.5 * r @ r, rel=1e-10)
        r = r - eta_m * H @ r  # r_{t+1} = (I - eta m H_m) r_t
    t_star = lazy.linearized_iterations(evals, c, eta_m)
    brute = next(t for t in range(1, 10**5) if lazy.linearized_loss(evals, c, eta_m, t)[0] <= 1e-3 * 0.5 * y @ y)
    assert t_star == brute


def test_linearized_rate_matches_sum_normalization_but_not_mean():
    """With Loss = (1/2) sum (the train_gd normalization), eta = 1/(m lambda_max) contracts at least as
    fast as the SPEC's rho = 1 - eta m lambda_min / 2; with a mean (gradient / n) it would not."""
    n = 16
    H, evals, y = _psd(n, 3, cond=20.0)
    ev, V = np.linalg.eigh(H)
    c = (V.T @ y) ** 2
    eta_m = 1.0 / ev[-1]
    rho = 1.0 - eta_m * ev[0] / 2.0
    t = np.arange(1, 200)
    loss0 = 0.5 * y @ y
    assert np.all(lazy.linearized_loss(ev, c, eta_m, t) <= rho**t * loss0 * (1 + 1e-12))
    mean_curve = lazy.linearized_loss(ev, c, eta_m / n, t)  # the same eta on Loss / n
    assert np.any(mean_curve > rho**t * loss0)


def test_min_norm_distance_is_sqrt_y_Hinv_y_over_m():
    """(b): linear GD from w_0 converges to the min-norm interpolant, ||w - w_0|| = sqrt(y^T (m H_m)^-1 y),
    monotonically: the SPEC's 2 sqrt(y^T H_m^-1 y / m) is twice the limit (the factor m is right)."""
    rng = np.random.default_rng(1)
    n, P, m = 6, 40, 9.0  # J plays the (n, m^2) Jacobian; H_m = J J^T / m
    J = rng.standard_normal((n, P))
    y = rng.standard_normal(n)
    Hm = J @ J.T / m
    eta = 1.0 / (m * np.linalg.eigvalsh(Hm)[-1])
    w = np.zeros(P)
    dists = []
    for _ in range(4000):
        w -= eta * J.T @ (J @ w - y)
        dists.append(np.linalg.norm(w))
    limit = math.sqrt(y @ np.linalg.solve(Hm, y) / m)
    assert dists[-1] == pytest.approx(limit, rel=1e-8)
    assert np.all(np.diff(dists) >= -1e-12)  # monotone: the bound holds along the whole run


def test_gradient_drift_matches_explicit_gradients():
    m, L, d, n = 16, 4, 3, 3
    X = make_inputs(n, L, d, regime="unnormalized", seed=2)
    p = rnn_core.init_params(m, d, seed=4)
    W_T = p.W + 0.05 * torch.randn(m, m, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    got = lazy.gradient_drift(p, W_T, X)
    G0 = rnn_core.per_example_grad_W(p, X)
    GT = rnn_core.per_example_grad_W(p.with_W(W_T), X)
    want = torch.linalg.norm(GT - G0, dim=(1, 2)) / torch.linalg.norm(G0, dim=(1, 2))
    assert torch.allclose(got, want, rtol=1e-9, atol=0)
    assert float(want.max()) > 0.01  # a perturbation that moves the gradients


def _recipe(regime, seed, n=8, L=2, d=3):
    pos = (2,) if regime == "normalized" else (1, 2)
    return Recipe(n=n, L=L, d=d, regime=regime, target=TargetSpec(family="additive", f="sin", positions=pos),
                  data_seed=seed, init_seed=seed)


def _ctx():
    return Context(device=torch.device("cpu"), profile=get_profile("smoke"))


@pytest.mark.parametrize("regime", ["unit", "unnormalized"])
def test_positive_case_holds_and_measures_consistently(regime):
    out = lazy.CLAIM.evaluate({"m": 512, "L": 2, "regime": regime}, _recipe(regime, 1), _ctx())
    assert out.ok is True, out.measured
    m = out.measured
    assert m["w_dist_bound"] == pytest.approx(2 * m["w_dist_lin"])
    # lazy regime: the network moves no farther than the linearized limit (up to 10%, finite width)
    assert m["w_dist"] <= 1.1 * m["w_dist_lin"]
    assert m["kernel_drift"] <= lazy.DRIFT_MAX
    assert m["rate_ok"] is True
    # the measured rate constant agrees with the pass/fail of (a): rho uses the declared divisor 2
    assert m["rate_divisor"] <= lazy.CLAIM.declared["rate_divisor"]
    # the recorded series: t = 0 is loss_0 = ||y||^2 / 2 = n / 2 for standardized labels
    assert out.series[0]["t"] == 0 and out.series[0]["loss"] == pytest.approx(4.0)
    assert len(out.series) <= lazy.MAX_SERIES_ROWS


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_step_too_large_control_fails(regime):
    cell = {"m": 64, "L": 2, "regime": regime, "eta_factor": lazy.ETA_FACTOR_CONTROL, "control": True}
    out = lazy.CLAIM.evaluate(cell, _recipe(regime, 2), _ctx())
    assert out.ok is False
    assert out.measured["rate_ok"] is False
    rd = out.measured["rate_divisor"]
    assert math.isnan(rd) or rd > lazy.CLAIM.declared["rate_divisor"]  # NaN: the run overflowed (inf)


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_tiny_width_control_fails(regime):
    cell = {"m": lazy.TINY_WIDTH, "L": lazy.TINY_LENGTH, "regime": regime, "control": True}
    fails = [
        lazy.CLAIM.evaluate(cell, _recipe(regime, s, L=lazy.TINY_LENGTH), _ctx()).ok is False for s in range(5)
    ]
    # the verdict rule needs >= 3 failures in 5 for "fails"; measured: 23 of 24 seeded examples fail
    assert sum(fails) >= 4, fails


def test_cells_and_must_hold():
    for name in ("smoke", "quick"):
        profile = get_profile(name)
        cells = lazy.CLAIM.cells(profile)
        controls = [c for c in cells if c.get("control")]
        assert {c["regime"] for c in controls} == set(profile.regimes)
        assert any(c.get("eta_factor") == lazy.ETA_FACTOR_CONTROL for c in controls)
        assert any(c["m"] == lazy.TINY_WIDTH for c in controls)
        held = [c for c in cells if lazy.CLAIM.must_hold(c, profile)]
        assert held and all(c["m"] == profile.max_width and c["L"] == 2 for c in held)
        normalized = any(c["regime"] == "normalized" for c in held)
        assert normalized == (profile.max_width >= lazy.NORMALIZED_MIN_WIDTH)
