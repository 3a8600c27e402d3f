"""NTK-PD: the normalized positive-definiteness bound, its measured constants and the parallel-pair control."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnn_core
from claims.base import Context
from claims.catalogue import ntk_pd
from claims.profiles import get_profile
from rnn_core.data import Recipe, TargetSpec, separation

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
TARGET = TargetSpec(family="additive", f="z", positions=(1,), seed=0)


def _recipe(**kw) -> Recipe:
    base = dict(n=8, L=3, d=3, regime="unit", directions="sphere", target=TARGET, separation_floor=0.01,
                data_seed=3, init_seed=0)
    base.update(kw)
    return Recipe(**base)


def test_stats_equal_a_direct_recomputation():
    X = torch.randn(5, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    H = rnn_core.infinite_ntk(X)
    delta = separation(X)
    s = ntk_pd.pd_stats(H, delta, L=3)
    Hn = H.numpy()
    dg = np.diag(Hn)
    Hhat = Hn / np.sqrt(np.outer(dg, dg))
    lam_hat = np.linalg.eigvalsh(Hhat)[0]
    lam = np.linalg.eigvalsh(Hn)
    # float64 eigenvalues of a 5 x 5 matrix agree to rounding (1e-12 relative to the scale)
    assert s["lambda_min_hat"] == pytest.approx(lam_hat, rel=1e-9, abs=1e-12)
    assert s["constant"] == pytest.approx(lam_hat * 5 / delta**2, rel=1e-9)
    assert s["constant_spec"] == pytest.approx(lam[0] * 5 / (delta**2 * dg.mean()), rel=1e-9)
    assert s["floor_ratio"] == pytest.approx(lam[0] / (3 * lam[-1]), rel=1e-9)
    assert s["ok"] == (lam_hat >= 0.5 * delta**2 / 5)


def test_normalized_constant_is_invariant_to_rescaling_each_sequence():
    # delta and H_hat are both invariant under x_i -> a_i x_i (positive homogeneity of ReLU)
    X = torch.randn(6, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = torch.tensor([0.3, 1.0, 2.0, 4.0, 0.5, 7.0], dtype=torch.float64)
    s1 = ntk_pd.pd_stats(rnn_core.infinite_ntk(X), separation(X), 4)
    Y = X * a[:, None, None]
    s2 = ntk_pd.pd_stats(rnn_core.infinite_ntk(Y), separation(Y), 4)
    assert s2["constant"] == pytest.approx(s1["constant"], rel=1e-8)
    # the SPEC's mean-diagonal form is not invariant: that is the correction
    assert s2["constant_spec"] != pytest.approx(s1["constant_spec"], rel=1e-2)


def test_spec_mean_diagonal_form_fails_on_separated_unnormalized_data():
    # d = 1, L = 2, evenly spaced angles: well separated, yet sequences with X_1 ~ 0 have a tiny diagonal
    phi = np.linspace(0.0, math.pi, 8, endpoint=False) + 1e-3
    X = torch.tensor(np.stack([np.cos(phi), np.sin(phi)], 1))[:, :, None]
    s = ntk_pd.pd_stats(rnn_core.infinite_ntk(X), separation(X), 2)
    assert separation(X) > 0.3
    assert s["constant_spec"] < 1e-3  # measured 2.4e-5: the SPEC form fails by orders of magnitude
    assert s["ok"] and s["constant"] > 1.0  # the normalized form holds (measured 3.8)


def test_orthogonal_pair_is_the_tight_case_of_the_declared_constant():
    # (1, 1) and (1, -1): delta = sqrt 2, H_hat = [[1, 1/2], [1/2, 1]] -> constant exactly 1/2 (= C_PD),
    # so the SPEC's constant 1 is impossible at n = 2
    X = torch.tensor([[[1.0], [1.0]], [[1.0], [-1.0]]], dtype=torch.float64)
    s = ntk_pd.pd_stats(rnn_core.infinite_ntk(X), separation(X), 2)
    assert s["constant"] == pytest.approx(0.5, rel=1e-9)
    assert s["constant_spec"] == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_positive_case_holds(regime):
    out = ntk_pd.evaluate({"L": 3, "regime": regime, "n": 8}, _recipe(regime=regime), CTX)
    assert out.ok is True
    assert out.margin < 1.0
    assert out.measured["separation"] >= 0.01
    # SPEC section 2's identity H_inf(x, x) = (1/2) sum_{l<L} q_l holds to rounding
    assert out.measured["diag_identity_error"] <= 1e-13


@pytest.mark.parametrize("L", [2, 4])
def test_parallel_pair_control_fails_at_the_float64_floor(L):
    out = ntk_pd.evaluate({"L": L, "regime": "unit", "n": 8, "control": True}, _recipe(L=L), CTX)
    assert out.ok is False
    assert out.reason.startswith("lambda_min(H_hat)")
    assert out.measured["separation"] == pytest.approx(0.0, abs=1e-12)
    # SPEC: a singular H_inf shows lambda_min / lambda_max ~ 1e-9 L, below the 1e-8 L floor
    assert out.measured["floor_ok"] is True
    assert out.margin > 1e3


def test_cells_controls_and_must_hold():
    cells = ntk_pd.CLAIM.cells(SMOKE)
    controls = [c for c in cells if c.get("control")]
    assert {c["regime"] for c in controls} == set(SMOKE.regimes)
    assert all(ntk_pd.CLAIM.must_hold(c, SMOKE) for c in cells if not c.get("control"))
    assert not any(ntk_pd.CLAIM.must_hold(c, SMOKE) for c in controls)


def _kernel_without_half(X, X2=None, **kw):
    """H_inf with the 1/2 of P_l left out (a seeded kernel-recursion fault): exactly twice the kernel."""
    return 2.0 * _TRUE_KERNEL(X, X2, **kw)


_TRUE_KERNEL = rnn_core.infinite_ntk


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_a_wrong_kernel_constant_fails_through_the_diagonal_identity(regime, monkeypatch):
    # Scaling H_inf leaves H_hat, and so the eigenvalue rule, unchanged: the identity check is what
    # catches the fault (in every example of every must-hold cell).
    monkeypatch.setattr(rnn_core, "infinite_ntk", _kernel_without_half)
    out = ntk_pd.evaluate({"L": 3, "regime": regime, "n": 8}, _recipe(regime=regime), CTX)
    assert out.ok is False
    assert out.reason.startswith("kernel identity violated")
    assert out.measured["diag_identity_error"] == pytest.approx(1.0, rel=1e-12)
    assert out.margin < 1.0  # the eigenvalue bound itself still holds


def test_diag_identity_error_is_relative_and_guarded():
    X = torch.randn(4, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    H = rnn_core.infinite_ntk(X)
    assert ntk_pd.diag_identity_error(H, X) <= 1e-13
    assert ntk_pd.diag_identity_error(1.1 * H, X) == pytest.approx(0.1, rel=1e-9)
    Z = torch.zeros(2, 3, 2, dtype=torch.float64)
    assert ntk_pd.diag_identity_error(torch.zeros(2, 2, dtype=torch.float64), Z) == 0.0


def test_cost_grows_with_n():
    a = ntk_pd.cost({"L": 4, "regime": "unit", "n": 8}, SMOKE)
    b = ntk_pd.cost({"L": 4, "regime": "unit", "n": 256}, SMOKE)
    assert 0 < a < b


def test_search_cells_are_listed_asserted_and_attack_the_worst_pair():
    from claims.search import SearchPoint, evaluate_point

    for name in ("smoke", "quick", "standard"):
        profile = get_profile(name)
        search = [c for c in ntk_pd.CLAIM.cells(profile) if c.get("kind") == "search"]
        assert search and all(set(c) == {"kind", "n", "L", "regime"} for c in search)
        assert all(ntk_pd.CLAIM.must_hold(c, profile) for c in search)
    assert {(c["n"], c["L"]) for c in ntk_pd.search_cells(get_profile("quick"))} >= {(2, 2), (3, 8), (8, 8)}
    # the closed-form worst pair sits exactly on the declared constant: not a counterexample, margin 1
    cell = {"kind": "search", "n": 2, "L": 2, "regime": "unit"}
    X = torch.tensor([[[1.0], [1.0]], [[1.0], [-1.0]]], dtype=torch.float64)
    out = evaluate_point(ntk_pd.CLAIM, cell, SearchPoint.of(X, {}), CTX)
    assert out.ok is True and out.margin == pytest.approx(1.0, abs=1e-12)
    assert out.constants["c_pd"] == pytest.approx(ntk_pd.C_PD, abs=1e-12)
