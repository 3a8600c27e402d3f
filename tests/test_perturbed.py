"""rnn_core.perturb against autograd on explicitly built perturbed networks W'_k = W + omega_k Delta_k.

For every row the oracle (rnn_core.reference.explicit_pass) builds the m x m matrix W'_k, runs a plain
forward pass with autograd (h'_l, f'), differentiates f' with respect to every pre-activation g'_l (the
deltas) and to W'_k (the gradient G'), and each statistic is recomputed from these explicit quantities. Everything is float64;
agreement is asserted to 1e-10 relative: the batched pass and the explicit one add the same products
in a different order (rounding ~1e-15), so 1e-10 is generous, while a wrong mask, transpose or scale
moves the results at O(omega) or O(1), far above it (omega >= 1e-3 here).
"""

from __future__ import annotations

import math

import pytest
import torch

import rnn_core
from rnn_core.data import make_inputs
from rnn_core.ntk import ntk_features
from rnn_core.perturb import gram_fro_norm
from rnn_core.reference import explicit_pass

TOL = 1e-10


def _explicit(p, W, x, activation="relu"):
    """(h (L+1, m), deltas (L, m), f, G) of one sequence x (L, d) at recurrent matrix W, by autograd."""
    e = explicit_pass(p, x[None], W, activation=activation)
    return e.hidden[0], e.deltas[0], float(e.out[0]), e.grad_W[0]


def _rel(a, b):
    if b.numel() == 0:  # L = 1: no delta_l with l >= 2
        return 0.0 if a.numel() == 0 else math.inf
    den = float(b.abs().max())
    return float((a - b).abs().max()) / den if den > 0 else float((a - b).abs().max())


def _guarded(num, den):
    return (math.inf if num > 0 else 0.0) if den <= 0 else num / den


def _setup(L, m=24, n=3, seed=0, regime="unnormalized"):
    X = make_inputs(n, L, 4, regime=regime, seed=seed)
    p = rnn_core.init_params(m, 4, seed=seed + 1)
    g = torch.Generator().manual_seed(seed + 2)
    R = torch.randn(m, m, generator=g, dtype=torch.float64)
    R = R / torch.linalg.matrix_norm(R, ord=2)
    U = torch.randn(6, m, generator=g, dtype=torch.float64)
    V = torch.randn(6, m, generator=g, dtype=torch.float64)
    # unit V, and U of norm 1..2: ||u v^T||_F = ||u|| is then not always 1
    U = U / U.norm(dim=1, keepdim=True) * torch.linspace(1.0, 2.0, 6, dtype=torch.float64)[:, None]
    V = V / V.norm(dim=1, keepdim=True)
    index = torch.tensor([0, 1, 2, 0, 1, 2])
    omega = torch.tensor([1e-3, 3e-2, 0.3, 1e-2, 0.1, 1.0], dtype=torch.float64)
    rank_one = torch.tensor([False, False, False, True, True, True])
    return p, X, R, U, V, index, omega, rank_one


def _delta(k, R, U, V, rank_one):
    return torch.outer(U[k], V[k]) if bool(rank_one[k]) else R


@pytest.mark.parametrize("L", [1, 2, 5])
@pytest.mark.parametrize("activation", ["relu", "step"])
def test_perturbed_pass_equals_autograd_on_explicit_networks(L, activation):
    p, X, R, U, V, index, omega, rank_one = _setup(L)
    pp = rnn_core.perturbed_pass(p, X, omega, index=index, R=R, U=U, V=V, rank_one=rank_one, activation=activation)
    assert pp.hidden_states().shape == (6, L, p.m) and pp.deltas.shape == (6, L - 1, p.m)
    for k in range(6):
        Wk = p.W + omega[k] * _delta(k, R, U, V, rank_one)
        h, deltas, f, _ = _explicit(p, Wk, X[index[k]], activation)
        assert _rel(pp.hidden_states()[k], h[1:]) <= TOL
        assert abs(float(pp.out[k]) - f) <= TOL * max(1.0, abs(f))
        if activation == "relu":
            assert _rel(pp.deltas[k], deltas[1:]) <= TOL  # delta'_l, l = 2..L
        else:
            assert torch.count_nonzero(pp.deltas) == 0


@pytest.mark.parametrize("L", [1, 2, 5])
@pytest.mark.parametrize("activation", ["relu", "step"])
def test_statistics_equal_explicit_recomputation(L, activation):
    p, X, R, U, V, index, omega, rank_one = _setup(L, seed=3)
    S = rnn_core.perturbation_statistics(p, X, omega, index=index, R=R, U=U, V=V, rank_one=rank_one, activation=activation)
    for k in range(6):
        x = X[index[k]]
        Delta = omega[k] * _delta(k, R, U, V, rank_one)
        h, _, f, G = _explicit(p, p.W, x, activation)
        h1, _, f1, G1 = _explicit(p, p.W + Delta, x, activation)
        g_sign = torch.stack([(p.W @ h[l] + p.A @ x[l]) > 0 for l in range(L)])
        g1_sign = torch.stack([((p.W + Delta) @ h1[l] + p.A @ x[l]) > 0 for l in range(L)])
        r_h = max(_guarded(float((h1[l] - h[l]).norm()), float(h[l].norm())) for l in range(1, L + 1))
        flips = float((g_sign != g1_sign).sum(dim=1).max()) / p.m
        gnorm = float(torch.linalg.norm(G))
        r_g = _guarded(float(torch.linalg.norm(G1 - G)), gnorm)
        lin = float((G * Delta).sum())
        fo = _guarded(abs(f1 - f - lin), gnorm * float(torch.linalg.norm(Delta)))
        for name, want in (("r_h", r_h), ("flips", flips), ("r_g", r_g), ("first_order", fo)):
            got = float(getattr(S, name)[k])
            if math.isinf(want):
                assert got == want, (name, k)
            else:
                # absolute floor 1e-12: r_g and first_order are differences of nearly equal numbers at
                # omega = 1e-3, where the rounding of the two computations is ~1e-16 / omega^2 at most
                assert abs(got - want) <= TOL * abs(want) + 1e-12, (name, k, got, want)
        assert float(S.linear[k]) == pytest.approx(lin, rel=TOL, abs=1e-14)
        assert float(S.delta_fro[k]) == pytest.approx(float(torch.linalg.norm(Delta)), rel=TOL)
        assert float(S.grad_norm[k]) == pytest.approx(gnorm, rel=TOL, abs=1e-14)


def test_statistics_are_zero_at_omega_zero_and_first_order_is_second_order():
    p, X, R, *_ = _setup(4, m=48, seed=5, regime="unit")
    S0 = rnn_core.perturbation_statistics(p, X, 0.0, R=R)
    for name in ("r_h", "flips", "r_g", "first_order"):
        assert torch.count_nonzero(getattr(S0, name)) == 0, name
    # f is piecewise polynomial in W: without sign flips f' - f - <G, Delta> = O(omega^2), so the
    # relative first-order error is O(omega): 100x smaller omega gives a much smaller statistic
    small = rnn_core.perturbation_statistics(p, X, 1e-6, R=R)
    large = rnn_core.perturbation_statistics(p, X, 1e-4, R=R)
    assert torch.count_nonzero(small.flips) == 0 and torch.count_nonzero(large.flips) == 0
    assert bool((small.first_order < 0.05 * large.first_order).all())


def test_zero_sequence_is_guarded():
    p = rnn_core.init_params(16, 3, seed=0)
    X = torch.zeros(2, 3, 3, dtype=torch.float64)
    X[1] = make_inputs(1, 3, 3, regime="unit", seed=0)[0]
    R = torch.eye(16, dtype=torch.float64)
    S = rnn_core.perturbation_statistics(p, X, 0.1, R=R)
    # the zero sequence: h_l = h'_l = 0 and G = 0, f' = f = 0: every ratio is 0 / 0 := 0
    assert float(S.r_h[0]) == 0.0 and float(S.r_g[0]) == 0.0 and float(S.first_order[0]) == 0.0
    assert math.isfinite(float(S.r_h[1])) and float(S.r_h[1]) > 0


def test_gram_fro_norm_equals_explicit_matrix_norm():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    N = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    explicit = torch.stack([torch.linalg.norm(torch.einsum("ai,aj->ij", M[k], N[k])) for k in range(3)])
    assert _rel(gram_fro_norm(M, N), explicit) <= 1e-12  # same sums, reordered


def test_gradient_top_singular_is_the_top_pair_of_the_gradient():
    p, X, *_ = _setup(4, m=20, seed=6)
    U, V, sigma = rnn_core.gradient_top_singular(*ntk_features(p, X))
    for i in range(X.shape[0]):
        _, _, _, G = _explicit(p, p.W, X[i])
        s = torch.linalg.svdvals(G)
        assert float(sigma[i]) == pytest.approx(float(s[0]), rel=1e-10)
        assert float(U[i] @ G @ V[i]) == pytest.approx(float(s[0]), rel=1e-10)  # u^T G v = sigma_1
    # L = 1: G = 0, seeded random unit vectors and sigma = 0
    p1, X1, *_ = _setup(1, m=20, seed=6)
    U1, V1, s1 = rnn_core.gradient_top_singular(*ntk_features(p1, X1), seed=3)
    assert torch.count_nonzero(s1) == 0 and torch.allclose(U1.norm(dim=1), torch.ones(3, dtype=torch.float64))


def test_bad_arguments_are_named():
    p, X, R, U, V, index, omega, rank_one = _setup(3)
    with pytest.raises(ValueError, match="give R"):
        rnn_core.perturbed_pass(p, X, 0.1)
    with pytest.raises(ValueError, match="dense rows need R"):
        rnn_core.perturbed_pass(p, X, omega, index=index, U=U, V=V, rank_one=torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="omega must be"):
        rnn_core.perturbed_pass(p, X, torch.ones(4), R=R)
    with pytest.raises(ValueError, match="index must be"):
        rnn_core.perturbed_pass(p, X, 0.1, index=[0, 7], R=R)
    with pytest.raises(ValueError, match="activation"):
        rnn_core.perturbed_pass(p, X, 0.1, R=R, activation="tanh")
