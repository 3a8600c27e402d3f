"""GEN-ADD: the bound, the pass rule (inequality, trivial predictor, fit), a positive case, both random-label
controls, an untrained network failing, and the shared training helper."""

import math

import numpy as np
import pytest
import torch

from claims.base import NotAsserted
from claims.base import Context
from claims.catalogue import _training, gen_add
from claims.catalogue._training import (
    FIT_FRACTION,
    clipped_loss,
    mean_predictor,
    ntk_interpolant,
    predict,
    rms,
    train_as_lazy,
)
from claims.catalogue.gen_add import (
    DELTA,
    N_TEST,
    TRIVIAL_FRACTION,
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
QUICK = get_profile("quick")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)


def _recipe(n, L=2, regime="unit", f="z", kind="first", d=4, seed=3):
    spec = TargetSpec(family="additive", f=f, positions=informative_positions(kind, L, regime), seed=seed)
    return Recipe(n=n, L=L, d=d, regime=regime, target=spec, data_seed=seed, init_seed=seed + 1)


def _cell(n_grid, f="z", d=4, regime="unit", **extra):
    return {"m": 64, "L": 2, "regime": regime, "f": f, "positions": "first", "d": d, "n_grid": list(n_grid), **extra}


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


def _row(n, test, train, B, trivial=0.7, fitted=True):
    return {"n": n, "test_loss": test, "train_loss": train, "trivial_loss": trivial, "B": B, "B_first_term": B / 2,
            "vacuous": B >= 1.0, "trained": B < 1.0, "steps": 10, "stopped": "loss_target",
            "loss_ratio": 1e-3 if fitted else 0.2, "fitted": fitted}


def test_rule_fails_when_the_inequality_fails_at_some_n():
    out = outcome_from_rows([_row(64, 0.3, 0.0, 1.5), _row(256, 0.6, 0.05, 0.5, trivial=1.4)])
    assert out.ok is False and "test 0.600 > train 0.050 + B 0.500" in out.reason
    assert out.margin == pytest.approx(0.6 / 0.55)
    assert out.measured["n_nonvacuous"] == 256
    assert out.constants["B_factor"] == pytest.approx(0.55 / 0.5)


def test_rule_fails_when_the_network_does_not_beat_the_mean_predictor():
    # the inequality holds (0.4 <= 0.05 + 0.6) but 0.4 > 0.5 x 0.7: a barely trained network fails
    out = outcome_from_rows([_row(256, 0.4, 0.05, 0.6, trivial=0.7)])
    assert out.ok is False and "does not beat the mean predictor" in out.reason
    assert out.margin == pytest.approx(0.4 / (TRIVIAL_FRACTION * 0.7))
    assert out.constants["trivial_fraction"] == pytest.approx(0.4 / 0.7)


def test_rule_is_inconclusive_when_every_bound_is_vacuous():
    out = outcome_from_rows([_row(64, math.nan, math.nan, 1.2), _row(256, math.nan, math.nan, 1.01)])
    assert out.ok is None and out.reason.startswith("vacuous")
    assert math.isnan(out.measured["n_nonvacuous"])
    assert out.measured["vacuous"] is True


def test_rule_is_inconclusive_when_training_did_not_fit():
    out = outcome_from_rows([_row(256, 0.1, 0.05, 0.6, fitted=False)])
    assert out.ok is None and out.reason.startswith("training did not fit")


def test_rule_holds_non_vacuously():
    out = outcome_from_rows([_row(64, math.nan, math.nan, 1.3), _row(256, 0.1, 0.02, 0.6)])
    assert out.ok is True and out.reason == ""
    assert out.margin == pytest.approx(max(0.1 / 0.62, 0.1 / (TRIVIAL_FRACTION * 0.7)))
    assert [r["n"] for r in out.series] == [64, 256]
    assert set(out.series[1]) >= {"n", "test_loss", "train_loss", "trivial_loss", "B"}


# --------------------------------------------------------------------------------------------------
# end to end on small cases


def test_positive_case_holds_and_matches_a_direct_recomputation():
    recipe = _recipe(256)
    rows = evaluate_grid(_cell((64, 256)), recipe, CTX, (64, 256), steps=300)
    out = outcome_from_rows(rows)
    assert out.ok is True, out.reason
    first, last = rows
    assert first["vacuous"] and not first["trained"]  # B > 1 at n = 64: not trained
    assert last["B"] < 1.0 and last["fitted"]  # f = z on X_1, d = 4, n = 256: B ~ 0.7 (non-vacuous)

    # recompute n = 256 by an independent path: train_gd's default step, predict_centered, numpy bound
    X, y_raw = make_dataset(recipe)
    Xt, yt_raw = make_dataset(recipe, split="test", n=N_TEST)
    s = Standardizer.fit(y_raw)
    y, yt = s(y_raw), s(yt_raw)
    p = init_params(64, 4, seed=recipe.init_seed)
    res = train_gd(p, X, y, steps=300, loss_target=FIT_FRACTION * 0.5 * float(y @ y), record_every=5)
    train = float(np.minimum(1, np.abs((predict_centered(p, res.W_T, X) - y).numpy())).mean())
    test = float(np.minimum(1, np.abs((predict_centered(p, res.W_T, Xt) - yt).numpy())).mean())
    trivial = float(np.minimum(1, np.abs((yt - y.mean()).numpy())).mean())
    assert last["train_loss"] == pytest.approx(train, abs=1e-12)
    assert last["test_loss"] == pytest.approx(test, abs=1e-12)
    assert last["trivial_loss"] == pytest.approx(trivial, abs=1e-12)
    assert test <= TRIVIAL_FRACTION * trivial  # measured 0.09 against 0.69
    H = infinite_ntk(X).numpy()
    yn = y.numpy()
    B = 2 * math.sqrt(yn @ np.linalg.solve(H, yn) * np.trace(H)) / 256 + 3 * math.sqrt(math.log(40) / 512)
    assert last["B"] == pytest.approx(B, rel=1e-8)  # Cholesky vs LU on a well-conditioned H_inf


def test_nonlinear_target_is_non_vacuous_and_holds():
    out = gen_add.evaluate(_cell((256,), f="z2", d=2), _recipe(256, f="z2", d=2), CTX)
    assert out.ok is True, out.reason
    assert out.measured["B"] < 1.0  # z^2 on X_1, d = 2, n = 256: B ~ 0.85


def test_an_untrained_network_fails(monkeypatch):
    """The zero (= mean, on standardized labels) predictor: train ~ test ~ E min(1, |y|) satisfies
    test <= train + B, so only the trivial-predictor rule stops it."""
    real = _training.predict
    monkeypatch.setattr(_training, "predict", lambda fit, W, X: torch.zeros_like(real(fit, W, X)))
    rows = evaluate_grid(_cell((256,)), _recipe(256), CTX, (256,), steps=300)
    out = outcome_from_rows(rows)
    row = rows[-1]
    assert row["test_loss"] <= row["train_loss"] + row["B"]  # the bound alone would pass it
    assert out.ok is False and "does not beat the mean predictor" in out.reason
    assert row["test_loss"] == pytest.approx(row["trivial_loss"], abs=1e-12)  # mean of standardized labels is 0


def test_an_unfitted_network_is_inconclusive_or_fails():
    # 3 GD steps: the loss falls by far less than 1e-2; whatever the losses, it never passes
    rows = evaluate_grid(_cell((256,)), _recipe(256), CTX, (256,), steps=3)
    out = outcome_from_rows(rows)
    assert not rows[-1]["fitted"] and rows[-1]["loss_ratio"] > FIT_FRACTION
    assert out.ok is not True
    if out.ok is None:
        assert out.reason.startswith("training did not fit")


@pytest.mark.parametrize("regime", ["unit", "unnormalized"])
def test_trained_rnn_random_label_control_fails(regime):
    cell = _cell((256,), regime=regime, predictor="rnn", control=True)
    out = gen_add.evaluate(cell, _recipe(256, regime=regime), CTX)
    assert out.ok is False and "does not beat the mean predictor" in out.reason
    assert out.measured["trained"] and out.measured["steps"] > 0
    # a network trained on independent labels predicts fresh ones no better than their mean
    assert out.measured["test_over_trivial"] > 0.9  # measured 1.03-1.04
    assert out.measured["B_random"] > out.measured["B"]  # Arora's contrast


def test_linearized_random_label_control_fails():
    cell = _cell((512,), predictor="ntk", control=True)
    out = gen_add.evaluate(cell, _recipe(512), CTX)
    assert out.ok is False
    assert out.measured["B"] < 0.65  # B on the TRUE labels
    assert out.measured["train_loss"] < 1e-3  # the linearized network interpolates the random labels
    assert out.measured["test_loss"] > 0.6  # ... and cannot predict fresh ones
    assert "test" in out.reason and "+ B" in out.reason
    assert out.measured["B_random"] > 2.0  # Arora's contrast: the bound on random labels is far larger


def test_vacuous_grid_is_not_trained_unless_asked():
    recipe = _recipe(64, L=4)
    cell = {**_cell((32, 64)), "L": 4}
    rows = evaluate_grid(cell, recipe, CTX, (32, 64), steps=20)
    assert all(r["vacuous"] and not r["trained"] for r in rows)  # n <= 64, L = 4: B > 1
    assert outcome_from_rows(rows).ok is None
    rows = evaluate_grid(cell, recipe, CTX, (32, 64), steps=20, train_vacuous=True)
    assert all(r["trained"] and 0.0 <= r["test_loss"] <= 1.0 for r in rows)
    assert outcome_from_rows(rows).ok is None  # trained but vacuous: still not checked


# --------------------------------------------------------------------------------------------------
# cells, strategy


@pytest.mark.parametrize("name", ["smoke", "quick", "standard", "full"])
def test_cells_have_both_controls_and_a_nonlinear_must_hold_cell(name):
    prof = get_profile(name)
    cells = gen_add.cells(prof)
    controls = [c for c in cells if c.get("control")]
    assert {c["predictor"] for c in controls} == {"rnn", "ntk"} and all(c["L"] == 2 for c in controls)
    must = [c for c in cells if gen_add.must_hold(c, prof) is True]
    assert any(c["f"] == "z" for c in must) and any(c["f"] in ("z2", "sin", "cos") for c in must)
    assert not any(gen_add.must_hold(c, prof) is True for c in controls)
    assert isinstance(gen_add.must_hold({**must[0], "regime": "normalized"}, prof), NotAsserted)
    assert {c["regime"] for c in cells} == set(prof.regimes)
    assert all(gen_add.cost(c, prof) > 0 for c in cells)


def test_strategy_pins_the_cell_target_and_dimension():
    from claims.runner import draw_recipes

    cell = {"m": 64, "L": 4, "regime": "normalized", "f": "z", "positions": "all", "d": 3, "n_grid": [16, 64]}
    for r in draw_recipes(gen_add.strategy(cell, SMOKE), 3, seed=1):
        assert r.n == 64 and r.L == 4 and r.d == 3
        assert r.target.family == "additive" and r.target.f == "z" and r.target.positions == (2, 3, 4)


# --------------------------------------------------------------------------------------------------
# the shared training helper


def test_training_helper_matches_train_gd_and_predicts_in_chunks(monkeypatch):
    recipe = _recipe(12)
    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    p = init_params(16, 4, seed=0)
    fit = train_as_lazy(p, X, y, steps=50)
    res = train_gd(p, X, y, steps=50, loss_target=1e-3 * 0.5 * float(y @ y), record_every=5)
    assert fit.steps == res.steps and fit.eta == pytest.approx(res.eta, rel=1e-12)
    assert torch.equal(fit.W_T, res.W_T)
    assert fit.fitted == (fit.loss_ratio <= FIT_FRACTION)
    monkeypatch.setattr(_training, "_CHUNK_FLOATS", 3 * 17)  # force chunks of 1 sequence
    assert _training.chunk_rows(2, 16) == 1
    assert torch.allclose(predict(fit, None, X), predict_centered(p, fit.W_T, X), rtol=0, atol=1e-12)


def test_clipped_loss_rms_and_mean_predictor():
    assert clipped_loss(torch.tensor([0.0, 0.0, 0.0]), torch.tensor([0.5, -3.0, 1.0])) == pytest.approx(2.5 / 3)
    assert rms(torch.tensor([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))
    assert torch.equal(mean_predictor(torch.tensor([1.0, 2.0, 6.0]), 2), torch.tensor([3.0, 3.0], dtype=torch.float64))
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
    from dataclasses import replace

    recipe = _recipe(6)
    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    dead = replace(init_params(8, 4, seed=0), A=torch.zeros(8, 4, dtype=torch.float64))  # h_l = 0: H_m(W_0) = 0
    fit = train_as_lazy(dead, X, y, steps=10)
    assert fit.stopped == "no_gradient" and fit.steps == 0 and torch.equal(fit.W_T, dead.W) and not fit.fitted
    u, ut = ntk_interpolant(dead, X, y, X[:3])
    assert torch.equal(u, torch.zeros(6, dtype=torch.float64)) and torch.equal(ut, torch.zeros(3, dtype=torch.float64))
