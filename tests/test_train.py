"""rnn_core.train: structured gradient, GD dynamics, the lazy-training rate."""


import pytest
import torch

from rnn_core.data import make_inputs
from rnn_core.kernels import infinite_ntk
from rnn_core.model import forward, init_params
from rnn_core.ntk import empirical_ntk
from rnn_core.train import default_eta, loss_gradient, predict_centered, train_gd


def _autograd_loss(p, W, X, y, f0):
    h = torch.zeros(X.shape[0], p.m, dtype=torch.float64)
    for l in range(X.shape[1]):
        h = torch.relu(h @ W.T + X[:, l] @ p.A.T)
    return 0.5 * ((h @ p.B - f0 - y) ** 2).sum()


@pytest.mark.parametrize("L", [1, 2, 4])
def test_gradient_equals_autograd(L):
    X = make_inputs(5, L, 3, regime="unnormalized", seed=1)
    p = init_params(7, 3, seed=2)
    f0 = forward(p, X).out
    g = torch.Generator().manual_seed(3)
    W1 = p.W + 0.3 * torch.randn(7, 7, generator=g, dtype=torch.float64)  # away from W_0: f_c != 0
    y = torch.randn(5, generator=g, dtype=torch.float64)
    loss, grad, r = loss_gradient(p.with_W(W1), X, y, f0)
    Wr = W1.clone().requires_grad_(True)
    ref = _autograd_loss(p, Wr, X, y, f0)
    ref.backward()
    # same float64 operations in a different order: agreement to ~1e-15 relative, 1e-10 is generous
    assert float(loss) == pytest.approx(float(ref.detach()), rel=1e-12)
    assert float((grad - Wr.grad).abs().max()) <= 1e-10 * max(1.0, float(Wr.grad.abs().max()))


def test_loss_decreases_and_records():
    X = make_inputs(6, 3, 3, regime="unit", seed=0, separation_floor=0.05)
    y = torch.randn(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = init_params(64, 3, seed=1)
    res = train_gd(p, X, y, steps=40, record_every=10)
    assert res.ts == [0, 10, 20, 30, 40] and res.steps == 40 and res.stopped == "step_cap"
    assert res.losses[0] == pytest.approx(0.5 * float(y @ y), rel=1e-12)  # centered output starts at 0
    assert all(b < a for a, b in zip(res.losses, res.losses[1:]))
    assert res.w_dist[0] == 0.0 and res.w_dist[-1] > 0
    assert float(torch.linalg.norm(res.W_T - p.W)) == pytest.approx(res.w_dist[-1], rel=1e-12)
    # the final loss is the loss of W_T
    assert 0.5 * float(((predict_centered(p, res.W_T, X) - y) ** 2).sum()) == pytest.approx(res.losses[-1], rel=1e-10)
    assert torch.equal(p.W, init_params(64, 3, seed=1).W)  # W_0 untouched


def test_loss_target_stops_early():
    X = make_inputs(6, 3, 3, regime="unit", seed=0, separation_floor=0.05)
    y = torch.ones(6, dtype=torch.float64)
    p = init_params(128, 3, seed=1)
    res = train_gd(p, X, y, steps=5000, loss_target=1e-3 * 3.0)
    assert res.stopped == "loss_target" and res.steps < 5000
    assert res.losses[-1] <= 3e-3 < res.losses[-2]


def test_linear_rate_on_a_wide_network_and_violation_with_a_large_step():
    # m = 1024, n = 8, L = 3: lazy regime. SPEC LAZY (a): loss_t <= (1 - eta m lambda_min(H_inf)/2)^t loss_0
    # with eta = 1/(m lambda_max(H_m(W_0))). 30 steps keep the loss far above the float64 floor (~1e-28).
    m = 1024
    X = make_inputs(8, 3, 4, regime="unit", seed=0, separation_floor=0.05)
    y = torch.randn(8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    p = init_params(m, 4, seed=0)
    res = train_gd(p, X, y, steps=30, track_kernel=True)
    H0 = empirical_ntk(p, X)
    assert res.eta == pytest.approx(1.0 / (m * float(torch.linalg.eigvalsh(H0)[-1])), rel=1e-12)
    assert res.eta == pytest.approx(default_eta(p, X), rel=1e-12)
    lam_inf = float(torch.linalg.eigvalsh(infinite_ntk(X))[0])
    rate = 1.0 - res.eta * m * lam_inf / 2
    assert 0 < rate < 1
    for t, loss in zip(res.ts, res.losses):
        assert loss <= rate**t * res.losses[0]
    assert res.losses[-1] < 1e-3 * res.losses[0]  # the bound is not vacuous: real convergence happened
    assert res.kernel_drift is not None and res.kernel_drift < 0.1  # SPEC LAZY (c)

    # 10x the step: the top eigendirection gets the factor 1 - 10 = -9, so the loss grows at once,
    # violating the rate (the ReLU network may later come back down, so we do not demand divergence).
    bad = train_gd(p, X, y, eta=10 * res.eta, steps=3)
    violated = [loss > rate**t * bad.losses[0] for t, loss in zip(bad.ts, bad.losses)]
    assert any(violated) and bad.losses[1] > bad.losses[0]


def test_divergence_is_detected():
    X = make_inputs(6, 3, 3, regime="unit", seed=0, separation_floor=0.05)
    y = torch.randn(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p = init_params(64, 3, seed=1)
    eta = default_eta(p, X)
    res = train_gd(p, X, y, eta=1e4 * eta, steps=200)
    assert res.stopped == "diverged" and res.steps < 200


def test_bad_input():
    X = make_inputs(4, 2, 3, regime="unit", seed=0)
    p = init_params(16, 3, seed=0)
    y = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="eta"):
        train_gd(p, X, y, eta=-1.0)
    with pytest.raises(ValueError, match="steps"):
        train_gd(p, X, y, steps=-1)
    with pytest.raises(ValueError, match="record_every"):
        train_gd(p, X, y, record_every=0)
    with pytest.raises(ValueError, match="y must have shape"):
        train_gd(p, X, torch.zeros(5))
    with pytest.raises(ValueError, match="loss_target"):
        train_gd(p, X, y, loss_target=float("nan"))
    with pytest.raises(ValueError, match="d = 2"):
        train_gd(p, make_inputs(4, 2, 2, regime="unit"), y)
    # L = 1: W never acts, the NTK is 0, so no default step exists
    with pytest.raises(ValueError, match="lambda_max"):
        train_gd(p, make_inputs(4, 1, 3, regime="unit"), y)


def test_float32_network_runs():
    X = make_inputs(4, 3, 3, regime="unit", seed=0)
    p = init_params(32, 3, seed=0, dtype=torch.float32)
    res = train_gd(p, X, torch.ones(4), steps=5)
    # float32 network, float64 master weights (rnn_core.train's precision note)
    assert res.W_T.dtype == torch.float64 and res.losses[-1] < res.losses[0]
