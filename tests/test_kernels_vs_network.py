"""The analytic kernels of SPEC section 2 against the formulas and against wide networks.

- infinite_ntk: equals a scalar transcription of SPEC section 2 (product form of P_l); symmetric; PSD;
  diagonal (1/2) sum_{l<L} q_l; positively homogeneous of degree 1 in each argument (and not odd);
  zero rows for sequences whose first L - 1 steps are zero; a shared zero prefix is a shift.
- wide networks: the seed-averaged empirical NTK at m = 4096 is close to H_inf and the error shrinks
  from m = 256 to m = 4096; ||h_l||^2 -> q_l and ||delta_l||^2 / m -> 1/2.
- the structured empirical NTK equals the torch.func Jacobian reference to 1e-10 relative (float64),
  for several (n, L, d, m), for X2 != X, and for L = 1 (the zero kernel).
"""

from __future__ import annotations

import math

import pytest
import torch

import rnn_core
from rnn_core import empirical_ntk, empirical_ntk_reference, infinite_ntk, infinite_ntk_diag, init_params
from rnn_core.data import make_inputs


def _x(n, L, d, regime="unit", seed=0, directions="sphere"):
    return make_inputs(n, L, d, regime=regime, directions=directions, seed=seed)


def scalar_h_inf(x, y) -> float:
    """H_inf(x, y) for two (L, d) sequences, transcribed from SPEC section 2 with P_l as a product."""
    L = x.shape[0]
    K = {(0, "xy"): 0.0, (0, "xx"): 0.0, (0, "yy"): 0.0}
    Kdot = {}
    for l in range(1, L + 1):
        sxy = K[(l - 1, "xy")] + float(x[l - 1] @ y[l - 1])
        sxx = K[(l - 1, "xx")] + float(x[l - 1] @ x[l - 1])
        syy = K[(l - 1, "yy")] + float(y[l - 1] @ y[l - 1])
        K[(l, "xx")], K[(l, "yy")] = sxx, syy  # K_l(x, x) = S_l(x, x) (angle 0)
        if sxx <= 0 or syy <= 0:
            K[(l, "xy")], Kdot[l] = 0.0, 0.0
            continue
        c = max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
        th = math.acos(c)
        K[(l, "xy")] = math.sqrt(sxx * syy) / math.pi * (math.sin(th) + (math.pi - th) * c)
        Kdot[l] = (math.pi - th) / math.pi
    total = 0.0
    for l in range(1, L + 1):
        P = 0.5
        for k in range(l, L + 1):
            P *= Kdot[k]
        total += P * K[(l - 1, "xy")]
    return total


# ------------------------------------------------------------------------------------------------
# H_inf: formulas and identities


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_infinite_ntk_matches_the_spec_formulas(regime):
    X = _x(4, 4, 3, regime=regime, seed=1)
    H = infinite_ntk(X)
    ref = torch.tensor([[scalar_h_inf(X[i], X[j]) for j in range(4)] for i in range(4)], dtype=torch.float64)
    assert torch.allclose(H, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


@pytest.mark.parametrize("regime,directions", [("normalized", "sphere"), ("unit", "tokens"),
                                               ("unnormalized", "gaussian")])
def test_infinite_ntk_symmetric_psd_and_diagonal(regime, directions):
    X = _x(12, 5, 3, regime=regime, directions=directions, seed=2)
    H = infinite_ntk(X)
    assert H.dtype == torch.float64
    assert torch.equal(H, H.T) or torch.allclose(H, H.T, rtol=0, atol=1e-14 * float(H.abs().max()))
    ev = torch.linalg.eigvalsh(0.5 * (H + H.T))
    assert float(ev.min()) >= -1e-10 * float(ev.max())  # PSD up to rounding
    q = torch.cumsum((X * X).sum(dim=2), dim=1)  # q_l, l = 1..L
    diag = 0.5 * q[:, :-1].sum(dim=1)  # (1/2) sum_{l=0}^{L-1} q_l, q_0 = 0
    assert torch.allclose(torch.diagonal(H), diag, rtol=1e-12, atol=0)
    assert torch.allclose(infinite_ntk_diag(X), diag, rtol=1e-12, atol=0)


def test_positive_homogeneity_is_degree_one_per_argument():
    # S_1(cx, x') = c S_1 and the angle is scale-free, so by induction K_l(cx, x') = c K_l(x, x') and
    # Kdot_l is unchanged: H_inf is homogeneous of degree 1 in each argument (degree 2 jointly).
    X = _x(5, 4, 3, regime="unnormalized", seed=3)
    Y = _x(4, 4, 3, regime="unit", seed=4)
    H = infinite_ntk(X, Y)
    for c in (0.25, 3.0):
        assert torch.allclose(infinite_ntk(c * X, Y), c * H, rtol=1e-10, atol=0)
        assert torch.allclose(infinite_ntk(X, c * Y), c * H, rtol=1e-10, atol=0)
        assert torch.allclose(infinite_ntk(c * X, c * Y), c * c * H, rtol=1e-10, atol=0)
        assert not torch.allclose(infinite_ntk(c * X, Y), c * c * H, rtol=1e-3)  # not degree 2
    # only POSITIVE homogeneity: ReLU is not odd, so H(-x, x') != -H(x, x')
    assert not torch.allclose(infinite_ntk(-X, Y), -H, rtol=1e-3)
    # the network's kernel has the same homogeneity exactly (relu(c g) = c relu(g), masks unchanged)
    p = init_params(32, 3, seed=0)
    assert torch.allclose(empirical_ntk(p, 2.5 * X, Y), 2.5 * empirical_ntk(p, X, Y), rtol=1e-10, atol=0)


def test_zero_prefix_sequences_give_zero_rows():
    # First L - 1 steps zero: h_1 .. h_{L-1} = 0, so grad_W f = sum_l delta_l h_{l-1}^T = 0 exactly, and
    # K_l = 0 for l < L in the limit. An all-zero sequence likewise.
    L, d = 4, 3
    X = _x(5, L, d, seed=5)
    X[1, : L - 1] = 0.0
    X[3] = 0.0
    H = infinite_ntk(X)
    for i in (1, 3):
        assert torch.count_nonzero(H[i]) == 0 and torch.count_nonzero(H[:, i]) == 0
    assert float(H[0, 0]) > 0 and float(H[2, 4]) != 0.0
    Hm = empirical_ntk(init_params(64, d, seed=1), X)
    for i in (1, 3):
        assert torch.count_nonzero(Hm[i]) == 0 and torch.count_nonzero(Hm[:, i]) == 0
    # a sequence with only X_1 = 0 is not degenerate at L = 4
    X[2, 0] = 0.0
    assert float(infinite_ntk(X)[2, 2]) > 0


def test_shared_zero_prefix_is_a_shift():
    # Two sequences that both start with k zero steps behave like their suffixes (h = 0 until then).
    Y = _x(4, 3, 2, regime="unnormalized", seed=6)
    X = torch.cat([torch.zeros(4, 2, 2, dtype=torch.float64), Y], dim=1)  # (4, 5, 2)
    assert torch.allclose(infinite_ntk(X), infinite_ntk(Y), rtol=1e-12, atol=0)
    p = init_params(48, 2, seed=2)
    assert torch.allclose(empirical_ntk(p, X), empirical_ntk(p, Y), rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------------
# wide networks


@pytest.fixture(scope="module")
def wide():
    """Kernels, forward ratios and backward ratios of 3 networks at m = 256 and m = 4096 (n = 5, L = 3)."""
    X = _x(5, 3, 3, regime="unit", seed=11)
    out = {"X": X, "H_inf": infinite_ntk(X)}
    q = torch.cumsum((X * X).sum(dim=2), dim=1)
    for m in (256, 4096):
        Hs, fwd, bwd = [], [], []
        for s in range(3):
            p = init_params(m, 3, seed=1000 + s)
            fw = rnn_core.forward(p, X)
            Hs.append(empirical_ntk(p, X))
            fwd.append(fw.hidden_states().pow(2).sum(dim=2) / q)  # ||h_l||^2 / q_l
            bwd.append(rnn_core.backward_deltas(p, fw).pow(2).sum(dim=2) / m)  # ||delta_l||^2 / m
        out[m] = {"H": torch.stack(Hs), "fwd": torch.stack(fwd), "bwd": torch.stack(bwd)}
    return out


def _rel_err(H, H_inf):
    return float((H - H_inf).abs().max() / torch.diagonal(H_inf).max())


@pytest.mark.slow
def test_wide_network_kernel_approaches_h_inf(wide):
    H_inf = wide["H_inf"]
    per_seed = {m: sum(_rel_err(H, H_inf) for H in wide[m]["H"]) / 3 for m in (256, 4096)}
    # m^-1/2 predicts a factor 4 from 256 to 4096; measured 4-6; require at least 2.
    assert per_seed[4096] < 0.5 * per_seed[256], per_seed
    # seed-averaged kernel at m = 4096: measured 0.02-0.06 (single seeds 0.02-0.10)
    assert _rel_err(wide[4096]["H"].mean(dim=0), H_inf) < 0.1


def test_forward_identity_at_large_width(wide):
    # ||h_l||^2 / q_l -> 1: relative spread ~ sqrt(5 l / m) ~ 0.06 at m = 4096 (0.25 allows 4 sd)
    f256, f4096 = wide[256]["fwd"], wide[4096]["fwd"]
    assert float((f4096 - 1).abs().max()) < 0.25
    assert float((f4096.mean(dim=0) - 1).abs().max()) < 0.1
    assert float((f4096 - 1).abs().mean()) < float((f256 - 1).abs().mean())


def test_backward_identity_at_large_width(wide):
    # ||delta_l||^2 / m -> 1/2 (spread ~ 0.05 relative at m = 4096)
    b256, b4096 = wide[256]["bwd"], wide[4096]["bwd"]
    assert float((b4096 / 0.5 - 1).abs().max()) < 0.3
    assert float((b4096.mean(dim=0) / 0.5 - 1).abs().max()) < 0.12
    assert float((b4096 - 0.5).abs().mean()) < float((b256 - 0.5).abs().mean())


# ------------------------------------------------------------------------------------------------
# structured empirical NTK against the torch.func reference


@pytest.mark.slow
@pytest.mark.parametrize("n,n2,L,d,m", [(3, None, 2, 2, 8), (4, None, 3, 3, 16), (2, 3, 5, 1, 12),
                                        (3, 2, 4, 3, 20), (3, 2, 1, 2, 8)])
def test_structured_ntk_equals_reference(n, n2, L, d, m):
    X = _x(n, L, d, regime="unnormalized", seed=20 + L)
    X2 = None if n2 is None else _x(n2, L, d, regime="unit", seed=40 + L)
    p = init_params(m, d, seed=L)
    H = empirical_ntk(p, X, X2)
    R = empirical_ntk_reference(p, X, X2)
    assert H.shape == R.shape == (n, n if n2 is None else n2)
    if L == 1:  # h_0 = 0: W never acts, the kernel is exactly zero
        assert torch.count_nonzero(H) == 0 and torch.count_nonzero(R) == 0
        return
    scale = float(R.abs().max())
    assert scale > 0
    assert float((H - R).abs().max()) <= 1e-10 * scale
    if L < 3:
        return  # a single term (l = l' = 2): no cross-time terms to check
    # the cross-time terms l != l' matter at finite width: dropping them would fail the comparison
    from rnn_core.ntk import ntk_features

    deltas, h_prev = ntk_features(p, X)
    deltas2, h_prev2 = (deltas, h_prev) if X2 is None else ntk_features(p, X2)
    diag_only = torch.einsum("ilm,jlm,ilk,jlk->ij", deltas, deltas2, h_prev, h_prev2) / m
    assert float((diag_only - R).abs().max()) > 1e-6 * scale
