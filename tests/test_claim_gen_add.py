"""GEN-ADD: the bound, the pass rule, a positive case, the random-label control, and the shared training helper."""

import math

import numpy as np
import pytest
import torch

from claims.base import Context
from claims.catalogue import gen_add
from claims.catalogue._training import clipped_loss, ntk_interpolant, predict, rms, train_as_lazy
from claims.catalogue.gen_add import (
    DELTA,
    N_TEST,
    evaluate_grid,
    generalization_bound,
    informative_positions,
    outcome_from_rows,
)
from claims.profiles import get_profile
from rnn_core.data import Recipe, make_dataset
from rnn_core.kernels import infinite_ntk
from rnn_core.model import init_params
from rnn_core.targets import Standardizer, TargetSpec
from rnn_core.train import predict_centered, train_gd

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)


def _recipe(n, L=2, regime="unit", f="z", kind="first", d=4, seed=3):
    spec = TargetSpec(family="additive", f=f, positions=informative_positions(kind, L, regime), seed=seed)
    return Recipe(n=n, L=L, d=d, regime=regime, target=spec, data_seed=seed, init_seed=seed + 1)


# --------------------------------------------------------------------------------------------------
# the bound


def test_bound_equals_direct_formula_and_is_scale_free():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((6, 6))
    H = G @ G.T + 0.5 * np.eye(6)
    y = rng.standard_normal(6)
    n = 6
    direct = 2 * math.sqrt(y @ np.linalg.solve(H, y) * np.trace(H)) / n + 3 * math.sqrt(math.log(2 / DELTA) / (2 * n))
    B, first = generalization_bound(torch.from_numpy(H), torch.from_numpy(y))
    # Cholesky vs LU solve of a condition-number-~100 matrix: agreement to ~1e-12 relative
    assert B == pytest.approx(direct, rel=1e-10)
    assert first == pytest.approx(2 * math.sqrt(y @ np.linalg.solve(H, y) * np.trace(H)) / n, rel=1e-10)
    B_scaled, _ = generalization_bound(torch.from_numpy(37.0 * H), torch.from_numpy(y))
    assert B_scaled == pytest.approx(B, rel=1e-10)  # the trace makes B invariant under H -> c H


def test_bound_reduces_to_arora_form_when_the_diagonal_is_one_half():
    rng = np.random.default_rng(1)
    V = rng.standard_normal((8, 8))
    H = V @ V.T
    d = np.sqrt(np.diag(H))
    H = 0.5 * H / np.outer(d, d)  # diagonal exactly 1/2, as Arora et al.'s H^inf on unit inputs
    y = rng.standard_normal(8)
    _, first = generalization_bound(torch.from_numpy(H), torch.from_numpy(y))
    assert first == pytest.approx(math.sqrt(2 * (y @ np.linalg.solve(H, y)) / 8), rel=1e-9)


def test_informative_positions():
    assert informative_positions("first", 4, "unit") == (1,)
    assert informative_positions("first", 4, "normalized") == (2,)  # X_1 = e_d carries no information there
    assert informative_positions("all", 3, "normalized") == (2, 3)
    assert informative_positions("all", 3, "unnormalized") == (1, 2, 3)
    with pytest.raises(ValueError):
        informative_positions("middle", 3, "unit")


# --------------------------------------------------------------------------------------------------
# the pass rule on hand-built rows


def _row(n, test, train, B):
    return {"n": n, "test_loss": test, "train_loss": train, "B": B, "B_first_term": B / 2, "vacuous": B >= 1.0,
            "ok": test <= train + B, "steps": 10, "capped": False, "loss_ratio": 1e-3, "trained": True}


def test_rule_fails_when_the_inequality_fails_at_some_n():
    out = outcome_from_rows([_row(64, 0.3, 0.0, 1.5), _row(256, 0.7, 0.05, 0.5)])
    assert out.ok is False
    assert out.margin == pytest.approx(0.7 / 0.55)
    assert out.measured["n_nonvacuous"] == 256
    assert out.constants["B_factor"] == pytest.approx(0.65 / 0.5)


def test_rule_is_inconclusive_when_every_bound_is_vacuous():
    out = outcome_from_rows([_row(64, 0.9, 0.0, 1.2), _row(256, 0.9, 0.0, 1.01)])
    assert out.ok is None
    assert math.isnan(out.measured["n_nonvacuous"])
    assert out.measured["vacuous"] is True


def test_rule_holds_non_vacuously():
    out = outcome_from_rows([_row(64, 0.2, 0.0, 1.3), _row(256, 0.1, 0.02, 0.6)])
    assert out.ok is True
    assert out.margin == pytest.approx(max(0.2 / 1.3, 0.1 / 0.62))
    assert [r["n"] for r in out.series] == [64, 256]
    assert set(out.series[0]) >= {"n", "test_loss", "train_loss", "B"}


# --------------------------------------------------------------------------------------------------
# end to end on small cases


def test_positive_case_holds_and_matches_a_direct_recomputation():
    recipe = _recipe(256)
    cell = {"m": 64, "L": 2, "regime": "unit", "f": "z", "positions": "first"}
    rows = evaluate_grid(cell, recipe, CTX, (64, 256), steps=150)
    out = outcome_from_rows(rows)
    assert out.ok is True
    last = rows[-1]
    assert last["B"] < 1.0  # f = z on X_1, d = 4, n = 256: B ~ 0.7 (non-vacuous)

    # recompute n = 256 by an independent path: train_gd's default step, predict_centered, numpy bound
    X, y_raw = make_dataset(recipe)
    Xt, yt_raw = make_dataset(recipe, split="test", n=N_TEST)
    s = Standardizer.fit(y_raw)
    y, yt = s(y_raw), s(yt_raw)
    p = init_params(64, 4, seed=recipe.init_seed)
    res = train_gd(p, X, y, steps=150, loss_target=1e-3 * 0.5 * float(y @ y), record_every=5)
    train = float(np.minimum(1, np.abs((predict_centered(p, res.W_T, X) - y).numpy())).mean())
    test = float(np.minimum(1, np.abs((predict_centered(p, res.W_T, Xt) - yt).numpy())).mean())
    assert last["train_loss"] == pytest.approx(train, abs=1e-12)
    assert last["test_loss"] == pytest.approx(test, abs=1e-12)
    H = infinite_ntk(X).numpy()
    yn = y.numpy()
    B = 2 * math.sqrt(yn @ np.linalg.solve(H, yn) * np.trace(H)) / 256 + 3 * math.sqrt(math.log(40) / 512)
    assert last["B"] == pytest.approx(B, rel=1e-8)  # Cholesky vs LU on a well-conditioned H_inf


def test_random_label_control_fails():
    recipe = _recipe(512)
    cell = {"m": 64, "L": 2, "regime": "unit", "f": "z", "positions": "first", "n": 512, "predictor": "ntk",
            "control": True}
    out = gen_add._evaluate(cell, recipe, CTX)
    assert out.ok is False
    assert out.measured["B"] < 0.65  # B on the TRUE labels
    assert out.measured["train_loss"] < 1e-3  # the linearized network interpolates the random labels
    assert out.measured["test_loss"] > 0.6  # ... and cannot predict fresh ones
    assert out.measured["B_random"] > 2.0  # Arora's contrast: the bound on random labels is far larger


def test_vacuous_grid_skips_training_only_when_asked():
    recipe = _recipe(64, L=4)
    cell = {"m": 64, "L": 4, "regime": "unit", "f": "z", "positions": "first"}
    rows = evaluate_grid(cell, recipe, CTX, (32, 64), steps=20, train_when_vacuous=False)
    assert all(r["vacuous"] for r in rows)  # n <= 64, L = 4: B > 1
    assert all(not r["trained"] and math.isnan(r["test_loss"]) for r in rows)
    assert outcome_from_rows(rows).ok is None
    rows = evaluate_grid(cell, recipe, CTX, (32, 64), steps=20, train_when_vacuous=True)
    assert all(r["trained"] and 0.0 <= r["test_loss"] <= 1.0 for r in rows)


# --------------------------------------------------------------------------------------------------
# cells, strategy


@pytest.mark.parametrize("name", ["smoke", "quick", "standard", "full"])
def test_cells_have_controls_and_must_hold_cells(name):
    prof = get_profile(name)
    cells = gen_add.CLAIM.cells(prof)
    controls = [c for c in cells if c.get("control")]
    assert controls and all(c["predictor"] == "ntk" and c["L"] == 2 for c in controls)
    assert any(gen_add.CLAIM.must_hold(c, prof) for c in cells)
    assert not any(gen_add.CLAIM.must_hold(c, prof) for c in controls)
    assert {c["regime"] for c in cells} == set(prof.regimes)


def test_strategy_pins_the_cell_target():
    from claims.runner import draw_recipes

    cell = {"m": 64, "L": 4, "regime": "normalized", "f": "z", "positions": "all"}
    for r in draw_recipes(gen_add.CLAIM.strategy(cell, SMOKE), 3, seed=1):
        assert r.n == 64 and r.L == 4 and r.d == SMOKE.d_default
        assert r.target.family == "additive" and r.target.f == "z" and r.target.positions == (2, 3, 4)


# --------------------------------------------------------------------------------------------------
# the shared training helper


def test_training_helper_matches_train_gd_and_predicts_in_chunks(monkeypatch):
    from claims.catalogue import _training

    recipe = _recipe(12)
    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    p = init_params(16, 4, seed=0)
    fit = train_as_lazy(p, X, y, steps=50)
    res = train_gd(p, X, y, steps=50, loss_target=1e-3 * 0.5 * float(y @ y), record_every=5)
    assert fit.steps == res.steps and fit.eta == pytest.approx(res.eta, rel=1e-12)
    assert torch.equal(fit.W_T, res.W_T)
    monkeypatch.setattr(_training, "_CHUNK_FLOATS", 3 * 17)  # force chunks of 1 sequence
    assert _training.chunk_rows(2, 16) == 1
    assert torch.allclose(predict(fit, None, X), predict_centered(p, fit.W_T, X), rtol=0, atol=1e-12)


def test_clipped_loss_and_rms():
    assert clipped_loss(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.5, -3.0, 1.0])) == pytest.approx(2.5 / 3)
    assert rms(torch.tensor([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))
    with pytest.raises(ValueError):
        clipped_loss(torch.zeros(2), torch.zeros(3))


def test_ntk_interpolant_interpolates():
    recipe = _recipe(10)
    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    Xt, _ = make_dataset(recipe, split="test", n=7)
    u, ut = ntk_interpolant(init_params(64, 4, seed=1), X, y, Xt)
    assert torch.allclose(u, y, atol=1e-6)  # jitter 1e-12 tr/n: interpolation to ~1e-9
    assert ut.shape == (7,)


def test_dead_network_does_not_train():
    recipe = _recipe(6)
    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    p = init_params(8, 4, seed=0)
    from dataclasses import replace

    dead = replace(p, A=torch.zeros_like(p.A))  # h_l = 0 for every input: H_m(W_0) = 0
    fit = train_as_lazy(dead, X, y, steps=10)
    assert fit.stopped == "no_gradient" and fit.steps == 0 and torch.equal(fit.W_T, dead.W)
    u, ut = ntk_interpolant(dead, X, y, X[:3])
    assert torch.equal(u, torch.zeros(6, dtype=torch.float64)) and torch.equal(ut, torch.zeros(3, dtype=torch.float64))
