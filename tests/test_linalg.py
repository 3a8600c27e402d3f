"""rnn_core.linalg: float64 PSD helpers."""

import math

import numpy as np
import pytest
import torch

from rnn_core.linalg import (
    condition_number,
    eigvalsh_sym,
    jitter,
    kernel_regression,
    lambda_min_max,
    quadratic_form,
    scale_free_quadratic_form,
    solve_psd,
)


def _psd(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, k, generator=g, dtype=torch.float64)
    return A @ A.T / k


def test_eigenvalues_and_condition():
    H = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(eigvalsh_sym(H), torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64))
    assert lambda_min_max(H) == pytest.approx((0.5, 3.0))
    assert condition_number(H) == pytest.approx(6.0)
    assert condition_number(torch.zeros(2, 2, dtype=torch.float64)) == math.inf
    ev = eigvalsh_sym(np.asarray(H, dtype=np.float32))  # numpy float32 in, float64 out
    assert ev.dtype == torch.float64


def test_quadratic_form_matches_direct_solve():
    H = _psd(30, 60)
    y = torch.randn(30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = float(y @ torch.linalg.solve(H, y))
    # jitter 1e-12 * mean eigenvalue perturbs the value by ~1e-12 * cond(H) relative: cond ~ 50 here
    assert quadratic_form(H, y) == pytest.approx(ref, rel=1e-9)
    assert quadratic_form(H.numpy(), y.numpy(), rel_jitter=0.0) == pytest.approx(ref, rel=1e-11)
    alpha = solve_psd(H, y, rel_jitter=0.0)
    assert torch.allclose(H @ alpha, y, atol=1e-10)
    # several right-hand sides: the sum of the quadratic forms
    Y = torch.stack([y, 2 * y], dim=1)
    assert quadratic_form(H, Y) == pytest.approx(5 * quadratic_form(H, y), rel=1e-12)


def test_scale_free_complexity_is_scale_invariant():
    # y^T H^-1 y scales like 1/c under H -> cH; y^T H^-1 y tr(H)/n does not (the jitter scales with H too).
    H = _psd(20, 40, seed=3)
    y = torch.randn(20, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    q, q7 = quadratic_form(H, y), quadratic_form(7.0 * H, y)
    assert q7 == pytest.approx(q / 7.0, rel=1e-10)
    assert scale_free_quadratic_form(7.0 * H, y) == pytest.approx(scale_free_quadratic_form(H, y), rel=1e-10)
    assert scale_free_quadratic_form(H, y) == pytest.approx(q * float(H.trace()) / 20, rel=1e-12)
    with pytest.raises(ValueError, match="positive trace"):
        scale_free_quadratic_form(torch.zeros(3, 3, dtype=torch.float64), torch.ones(3))


def test_singular_matrix_gives_large_but_finite_value():
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    H = torch.outer(v, v)  # rank one
    y_in = v.clone()
    y_out = torch.tensor([3.0, 0.0, -1.0], dtype=torch.float64)  # orthogonal to v: in the null space
    assert quadratic_form(H, y_in) == pytest.approx(1.0, rel=1e-6)
    big = quadratic_form(H, y_out)
    j = jitter(H)
    # rounding of the O(1) entries (~1e-16) is ~1e-4 of the jitter j ~ 5e-12, hence rel=1e-3
    assert math.isfinite(big) and big == pytest.approx(float(y_out @ y_out) / j, rel=1e-3)


def test_indefinite_matrix_falls_back_to_floored_eigenvalues():
    H = torch.diag(torch.tensor([2.0, -1.0], dtype=torch.float64))
    y = torch.tensor([2.0, 0.0], dtype=torch.float64)
    assert quadratic_form(H, y) == pytest.approx(2.0, rel=1e-10)


def test_kernel_regression_recovers_target_in_span():
    # linear kernel on R^3 features: any linear function of the features is in the RKHS, and with n > 3
    # points the min-norm interpolant equals it; predictions on new points match to solver accuracy.
    g = torch.Generator().manual_seed(0)
    Xtr = torch.randn(40, 3, generator=g, dtype=torch.float64)
    Xte = torch.randn(10, 3, generator=g, dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    # a full-rank kernel: linear part plus an RBF part, target = sum of alpha_j K(., x_j)
    def k(a, b):
        return a @ b.T + torch.exp(-torch.cdist(a, b) ** 2)
    K = k(Xtr, Xtr)
    alpha = torch.randn(40, generator=g, dtype=torch.float64)
    y = K @ alpha
    pred = kernel_regression(K, y, k(Xte, Xtr), rel_jitter=0.0)
    ref = k(Xte, Xtr) @ alpha
    assert torch.allclose(pred, ref, rtol=1e-6, atol=1e-6 * float(ref.abs().max()))
    # linear targets through the linear kernel alone
    Kl = Xtr @ Xtr.T
    pred_l = kernel_regression(Kl, Xtr @ w, Xte @ Xtr.T)  # rank 3: the jitter selects the min-norm solution
    assert torch.allclose(pred_l, Xte @ w, rtol=1e-6, atol=1e-6)
    # training points are interpolated
    assert torch.allclose(kernel_regression(K, y, K, rel_jitter=0.0), y, atol=1e-8 * float(y.abs().max()))


@pytest.mark.parametrize("args,match", [
    ((torch.zeros(2, 3), torch.zeros(2)), "square"),
    ((torch.eye(2), torch.zeros(3)), "shape \\(n,\\)"),
    ((torch.full((2, 2), float("inf")), torch.zeros(2)), "NaN or inf"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        quadratic_form(*args)
    with pytest.raises(ValueError, match="rel_jitter"):
        quadratic_form(torch.eye(2), torch.ones(2), rel_jitter=-1.0)
    with pytest.raises(ValueError, match="K_test_train"):
        kernel_regression(torch.eye(2), torch.ones(2), torch.ones(3, 3))


def test_returns_on_input_device_as_float64():
    H = _psd(5, 10).to(torch.float32)
    out = kernel_regression(H, torch.ones(5), H)
    assert out.dtype == torch.float64 and out.device == H.device
