"""GEN-KRR: the measured errors equal a direct recomputation, a wide network holds, m tiny fails, an
untrained network or a regularized solver fails, an unfitted network is inconclusive."""

import math

import numpy as np
import pytest
import torch

from claims.base import Context
from claims.catalogue import _training, gen_krr
from claims.catalogue.gen_add import informative_positions
from claims.catalogue.gen_krr import LOSS_FRACTION, REL_RMS_MAX, TINY_WIDTH, TRIVIAL_FRACTION, krr_comparison
from claims.profiles import get_profile
from rnn_core.data import Recipe, make_dataset
from rnn_core.kernels import infinite_ntk
from rnn_core.model import init_params
from rnn_core.ntk import empirical_ntk
from rnn_core.targets import Standardizer, TargetSpec
from rnn_core.train import predict_centered, train_gd

SMOKE = get_profile("smoke")
CTX = Context(device=torch.device("cpu"), profile=SMOKE)


def _recipe(n=16, L=2, regime="unit", seed=5):
    spec = TargetSpec(family="additive", f="z", positions=informative_positions("first", L, regime), seed=seed)
    floor = 0.0 if regime == "normalized" else gen_krr.SEPARATION_FLOOR
    return Recipe(n=n, L=L, d=4, regime=regime, target=spec, data_seed=seed, init_seed=seed + 1,
                  separation_floor=floor)


def _cell(m, L=2, regime="unit", control=False):
    cell = {"m": m, "L": L, "regime": regime, "f": "z", "positions": "first"}
    if control:
        cell["control"] = True
    return cell


def test_measured_errors_equal_a_direct_recomputation():
    recipe = _recipe(n=6)
    r = krr_comparison(32, recipe, steps=200, n_test=40)
    X, y_raw = make_dataset(recipe)
    Xt, yt_raw = make_dataset(recipe, split="test", n=40)
    s = Standardizer.fit(y_raw)
    y, yt = s(y_raw).numpy(), s(yt_raw).numpy()
    # f_KRR by a plain LU solve (the claim uses Cholesky with a 1e-12 relative jitter: same to ~1e-10 here)
    H = infinite_ntk(X).numpy()
    f_krr = infinite_ntk(Xt, X).numpy() @ np.linalg.solve(H, y)
    p = init_params(32, 4, seed=recipe.init_seed)
    res = train_gd(p, X, torch.from_numpy(y), steps=200, loss_target=LOSS_FRACTION * 0.5 * float(y @ y), record_every=5)
    u = predict_centered(p, res.W_T, Xt).numpy()
    Hm = empirical_ntk(p, X).numpy()
    f_lin = empirical_ntk(p, Xt, X).numpy() @ np.linalg.solve(Hm, y)
    scale = math.sqrt(np.mean(yt**2))
    assert r["rel_rms"] == pytest.approx(math.sqrt(np.mean((u - f_krr) ** 2)) / scale, rel=1e-7)
    assert r["rel_rms_hm"] == pytest.approx(math.sqrt(np.mean((u - f_lin) ** 2)) / scale, rel=1e-6)
    assert r["rel_rms_kernel"] == pytest.approx(math.sqrt(np.mean((f_lin - f_krr) ** 2)) / scale, rel=1e-6)
    assert r["mse_ratio"] == pytest.approx(np.mean((u - yt) ** 2) / np.mean((yt - y.mean()) ** 2), rel=1e-9)
    assert r["krr_train_residual"] < 1e-8  # ridgeless: interpolates (cond(H_inf) ~ 10 here)
    assert r["steps"] == res.steps
    assert r["capped"] == (res.stopped == "step_cap")


def test_wide_network_holds_at_L2():
    out = gen_krr.evaluate(_cell(1024), _recipe(), CTX)
    assert out.ok is True, out.reason
    assert out.measured["rel_rms"] <= REL_RMS_MAX
    assert out.measured["mse_ratio"] <= TRIVIAL_FRACTION  # measured 0.17 for this recipe
    assert out.measured["train_residual"] <= 0.01 + 1e-12  # Loss <= 1e-4 Loss_0 reached, not capped
    assert out.measured["capped"] is False and out.measured["fitted"] is True


def test_tiny_width_control_fails():
    out = gen_krr.evaluate(_cell(TINY_WIDTH, control=True), _recipe(), CTX)
    assert out.ok is False
    assert out.margin > 2.0  # measured ~6-9: far from kernel regression with H_inf


def test_an_untrained_network_fails(monkeypatch):
    real = _training.predict
    monkeypatch.setattr(_training, "predict", lambda fit, W, X: torch.zeros_like(real(fit, W, X)))
    out = gen_krr.evaluate(_cell(256), _recipe(), CTX)
    assert out.ok is False and "does not beat the mean predictor" in out.reason
    assert out.measured["mse_ratio"] == pytest.approx(1.0, abs=1e-9)  # mean of standardized labels is 0


def test_a_regularized_solver_fails(monkeypatch):
    import rnn_core.linalg as linalg

    real = linalg.kernel_regression
    monkeypatch.setattr(linalg, "kernel_regression", lambda K, y, Kt, rel_jitter=1e-12: real(K, y, Kt, rel_jitter=0.1))
    out = gen_krr.evaluate(_cell(1024), _recipe(), CTX)
    assert out.ok is False and "does not interpolate" in out.reason
    assert out.measured["krr_train_residual"] > 0.01  # measured ~0.1 with a ridge of 0.1 tr(H)/n


def test_rule_is_inconclusive_when_training_did_not_fit():
    base = {"rel_rms": 0.05, "mse_ratio": 0.2, "krr_train_residual": 1e-10, "loss_ratio": 0.05, "fitted": False,
            "stopped": "step_cap"}
    out = gen_krr.outcome_from(base)
    assert out.ok is None and out.reason.startswith("training did not fit")
    assert gen_krr.outcome_from({**base, "fitted": True, "loss_ratio": 1e-4}).ok is True
    # a failing comparison fails whether or not the network fitted
    assert gen_krr.outcome_from({**base, "rel_rms": 0.2}).ok is False


def test_error_decreases_with_width():
    # the finite-width finding behind the rule: the error falls (roughly like m^-1/2) as m grows
    errs = [krr_comparison(m, _recipe(seed=7), steps=300, n_test=200)["rel_rms"] for m in (16, 1024)]
    assert errs[1] < errs[0]


@pytest.mark.parametrize("name", ["smoke", "quick", "standard", "full"])
def test_cells(name):
    prof = get_profile(name)
    cells = gen_krr.cells(prof)
    controls = [c for c in cells if c.get("control")]
    assert {c["regime"] for c in controls} == set(prof.regimes)
    assert all(c["m"] == TINY_WIDTH for c in controls)
    must = [c for c in cells if gen_krr.must_hold(c, prof) is True]
    widest = max(gen_krr.SETTINGS[name]["widths"])
    assert any(c["regime"] == "unit" for c in must)
    assert must and all(c["L"] == 2 and c["m"] == widest and c["regime"] != "normalized" for c in must)
    assert all(gen_krr.cost(c, prof) > 0 for c in cells)


def test_strategy_pins_target_and_floor():
    from claims.runner import draw_recipes

    for regime, floor in (("unit", gen_krr.SEPARATION_FLOOR), ("normalized", 0.0)):
        for r in draw_recipes(gen_krr.strategy(_cell(64, L=4, regime=regime), SMOKE), 2, seed=3):
            assert r.n == gen_krr.SETTINGS["smoke"]["n"] and r.L == 4 and r.separation_floor == floor
            assert r.target.positions == informative_positions("first", 4, regime)
