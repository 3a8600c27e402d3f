"""RAND-LABEL: scale-free complexity, the applicability rule, every cell asserted, the shuffled-label
control, and a wrong kernel constant caught."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnn_core
from claims.base import Context
from claims.catalogue import _sample_complexity as sc
from claims.catalogue import rand_label
from claims.profiles import get_profile
from claims.sampling import draw_recipes
from claims.verdict import sequential_verdict
from rnn_core.data import Recipe

SMOKE = get_profile("smoke")
QUICK = get_profile("quick")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)
NORMALIZED_L2 = {"L": 2, "regime": "normalized", "target": "additive", "n_max": 128}


def _recipe(regime="normalized", L=2, kind="additive", seed=0, n=128) -> Recipe:
    return Recipe(n=n, L=L, d=2, regime=regime, directions="sphere",
                  target=rand_label.target_spec(kind, L, seed), separation_floor=rand_label.SEPARATION_FLOOR,
                  data_seed=seed, init_seed=0)


def test_complexity_equals_direct_solve_and_is_scale_free():
    X = torch.randn(20, 3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    H = rnn_core.infinite_ntk(X)
    y = torch.randn(20, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    direct = float(y @ torch.linalg.solve(H, y)) * float(torch.trace(H)) / 400
    # jitter 1e-12 tr/n is far below lambda_min here, so the solve agrees to ~1e-8 relative
    assert rand_label.complexity(H, y) == pytest.approx(direct, rel=1e-7)
    assert rand_label.complexity(7.5 * H, y) == pytest.approx(rand_label.complexity(H, y), rel=1e-10)
    Y = torch.stack([y, 2 * y], 1)
    C = rand_label.complexities(H, Y)
    assert float(C[1]) == pytest.approx(4 * float(C[0]), rel=1e-10)
    # the sum over columns (what evaluate divides by k for C(random)) is the sum of the columns' C
    assert rand_label.complexity(H, Y) == pytest.approx(float(C.sum()), rel=1e-10)


def test_rule_checks_only_applicable_points():
    rows = [{"n": 16, "ratio": 0.9}, {"n": 32, "ratio": 0.4}, {"n": 64, "ratio": 0.2}]
    assert rand_label.rule_on_curve(rows, None) == (None, pytest.approx(math.nan, nan_ok=True))
    ok, margin = rand_label.rule_on_curve(rows, 16)  # n >= 32 applies; 0.9 at n = 16 is ignored
    assert ok is True and margin == pytest.approx(0.8)
    ok, _ = rand_label.rule_on_curve(rows, 64)  # nothing at n >= 128
    assert ok is None
    ok, margin = rand_label.rule_on_curve(rows + [{"n": 128, "ratio": 0.6}], 16)
    assert ok is False and margin == pytest.approx(1.2)


@pytest.mark.parametrize("profile", [SMOKE, QUICK])
def test_every_cell_is_asserted_and_reaches_applicable_n(profile):
    cells = rand_label.CLAIM.cells(profile)
    assert {c["regime"] for c in cells if c.get("control")} == set(profile.regimes)
    s = rand_label.CLAIM.settings_for(profile)
    for c in cells:
        if not c.get("control"):
            assert rand_label.CLAIM.must_hold(c, profile) is True
        # at least two grid points above n_min (so 2 n_eps fits when n_eps is at the grid's start)
        assert c["n_max"] >= 4 * s["n_min"]
    assert set(profile.lengths) <= {c["L"] for c in cells}  # every length of the profile has a cell


def test_concept_holds_where_learnable():
    out = rand_label.CLAIM.evaluate(NORMALIZED_L2, _recipe(), CTX)
    assert out.ok is True, out.reason
    assert out.measured["applicable_points"] >= 1 and out.measured["ratio"] < 0.5
    app = [r for r in out.series if r["applicable"]]
    assert app and all({"n", "L", "C_concept", "C_random", "ratio"} <= set(r) for r in app)
    assert all(r["n"] >= 2 * out.measured["n_eps"] for r in app)
    assert app[-1]["n"] == NORMALIZED_L2["n_max"]  # checked up to the cell's n_max


def test_shuffled_labels_control_fails_with_ratio_near_one():
    cell = {**NORMALIZED_L2, "control": True}
    outs = [rand_label.CLAIM.evaluate(cell, r, CTX) for r in draw_recipes(rand_label.CLAIM.strategy(cell, SMOKE), 3, 4)]
    for out in outs:
        assert out.ok is False, out.reason
        # a permutation of the labels is as complex as random labels: ratio ~ 1 (measured 0.7 .. 1.5)
        assert 0.6 < out.measured["ratio"] < 2.5
    assert sequential_verdict([o.ok for o in outs], rand_label.CLAIM.plan(SMOKE)).verdict == "fails"


def test_not_applicable_is_inconclusive():
    # N = 2 quadratic at L = 4 in the unit regime: n_eps > 64 on a grid that stops at 64
    cell = {"L": 4, "regime": "unit", "target": "nvar", "n_max": 64}
    out = rand_label.CLAIM.evaluate(cell, _recipe("unit", 4, "nvar", n=64), CTX)
    assert out.ok is None and out.measured["applicable_points"] == 0 and out.reason


def _arccos_ntk(X, X2=None, *, kdot_scale=1.0):
    """H_inf of SPEC section 2 written out in numpy (an independent check), with Kdot multiplied by
    ``kdot_scale`` (1: the SPEC's; 1/2: the fault Kdot = (pi - theta) / (2 pi)). As in rnn_core.kernels,
    K_l = norm (sin theta / pi + Kdot c) reuses Kdot (so the fault reaches the NNGP recursion too) and a
    sequence paired with itself (X2 None) has cosine exactly 1."""
    self_pairs = X2 is None
    X = np.asarray(X)
    X2 = X if self_pairs else np.asarray(X2)
    n, L, _ = X.shape
    q, q2 = np.cumsum((X**2).sum(2), 1), np.cumsum((X2**2).sum(2), 1)
    K = np.zeros((n, X2.shape[0]))
    A = np.zeros_like(K)
    for l in range(L):
        norm = np.sqrt(np.outer(q[:, l], q2[:, l]))
        c = np.clip((K + X[:, l] @ X2[:, l].T) / norm, -1.0, 1.0)
        if self_pairs:
            np.fill_diagonal(c, 1.0)
        theta = np.arccos(c)
        kdot = kdot_scale * (np.pi - theta) / np.pi
        A = kdot * (A + K / 2)
        K = norm * (np.sin(theta) / np.pi + kdot * c)
    return torch.from_numpy(A)


def test_a_wrong_kernel_constant_is_caught(monkeypatch):
    # Kdot = (pi - theta) / (2 pi): H_inf forgets every step but the last by a factor 2 per step. In the
    # normalized regime the concept lives in the small-norm steps and its n_eps leaves the cell's grid, so
    # the asserted cell's examples turn inconclusive (measured 8 of 8) and the cell cannot hold.
    X = rnn_core.data.make_inputs(12, 3, 2, regime="unit", seed=0)
    assert torch.allclose(_arccos_ntk(X), rnn_core.infinite_ntk(X), rtol=1e-12)  # the reference is right
    X2 = rnn_core.data.make_inputs(5, 3, 2, regime="unit", seed=1)
    assert torch.allclose(_arccos_ntk(X2, X), rnn_core.infinite_ntk(X2, X), rtol=1e-12)

    def faulty(A, B=None, lengths=None, *, block_entries=None):
        return {L: _arccos_ntk(A[:, :L], None if B is None else B[:, :L], kdot_scale=0.5) for L in lengths}

    recipes = [_recipe(seed=s) for s in range(3)]
    assert all(rand_label.CLAIM.evaluate(NORMALIZED_L2, r, CTX).ok is True for r in recipes)
    monkeypatch.setattr(sc, "prefix_ntks", faulty)
    outs = [rand_label.CLAIM.evaluate(NORMALIZED_L2, r, CTX) for r in recipes]
    assert not any(o.ok is True for o in outs), [(o.ok, o.reason) for o in outs]
