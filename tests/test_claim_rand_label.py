"""RAND-LABEL: scale-free complexity, the applicability rule and the shuffled-label control."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnn_core
from claims.base import Context
from claims.catalogue import rand_label
from claims.profiles import get_profile
from rnn_core.data import Recipe

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)


def _recipe(regime="normalized", L=2, kind="additive", seed=0) -> Recipe:
    return Recipe(n=128, L=L, d=3, regime=regime, directions="sphere",
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


def test_rule_checks_only_applicable_points():
    rows = [{"n": 16, "ratio": 0.9}, {"n": 32, "ratio": 0.4}, {"n": 64, "ratio": 0.2}]
    assert rand_label.rule_on_curve(rows, None) == (None, pytest.approx(math.nan, nan_ok=True))
    ok, margin = rand_label.rule_on_curve(rows, 16)  # n >= 32 applies; 0.9 at n = 16 is ignored
    assert ok is True and margin == pytest.approx(0.8)
    ok, _ = rand_label.rule_on_curve(rows, 64)  # nothing at n >= 128
    assert ok is None
    ok, margin = rand_label.rule_on_curve(rows + [{"n": 128, "ratio": 0.6}], 16)
    assert ok is False and margin == pytest.approx(1.2)


def test_concept_holds_where_learnable():
    out = rand_label._evaluate({"L": 2, "regime": "normalized", "target": "additive"}, _recipe(), CTX)
    assert out.ok is True
    assert out.measured["applicable_points"] >= 1
    assert out.measured["ratio"] < 0.5
    keys = {"n", "L", "C_concept", "C_random", "ratio", "applicable"}
    assert out.series and all(keys <= set(r) for r in out.series)


def test_shuffled_labels_control_fails_with_ratio_near_one():
    cell = {"L": 2, "regime": "normalized", "target": "additive", "control": True}
    out = rand_label._evaluate(cell, _recipe(), CTX)
    assert out.ok is False
    # a permutation of the labels is as complex as random labels: ratio ~ 1 (measured 0.9 .. 1.5)
    assert 0.6 < out.measured["ratio"] < 2.0


def test_not_applicable_is_inconclusive():
    # N = 2 quadratic at L = 4 in the unit regime: n_eps > 128 on the smoke grid
    out = rand_label._evaluate({"L": 4, "regime": "unit", "target": "nvar"}, _recipe("unit", 4, "nvar"), CTX)
    assert out.ok is None
    assert out.measured["applicable_points"] == 0


def test_asserted_cells_exist_and_controls_are_not_asserted():
    cells = rand_label.CLAIM.cells(SMOKE)
    assert any(rand_label.CLAIM.must_hold(c, SMOKE) for c in cells)
    assert not any(rand_label.CLAIM.must_hold(c, SMOKE) for c in cells if c.get("control"))
