"""The RNN near its initialization: a batch of perturbed networks W' = W + Delta, and what changes.

Setting (SPEC section 1): h_0 = 0, g_l = W h_{l-1} + A X_l, h_l = relu(g_l), f(x) = B h_L, with
D_l = diag(1[g_l > 0]), delta_L = D_L B^T, delta_l = D_l W^T delta_{l+1} and the gradient

    G(x) = grad_W f(x) = sum_{l=2}^{L} delta_l h_{l-1}^T        (the l = 1 term vanishes: h_0 = 0).

A perturbation is W' = W + omega Delta; primes mark the quantities of W' (g'_l, h'_l, D'_l, delta'_l,
G'(x), f'(x)). Each row k of a batch pairs a sequence x_k with its own scale omega_k and direction
Delta_k, either a dense matrix R shared by the dense rows or a rank-one matrix u_k v_k^T, and runs

    g'_l = W h'_{l-1} + omega_k Delta_k h'_{l-1} + A X_l,        h'_l = act(g'_l)
    delta'_L = D'_L B^T,    delta'_l = D'_l (W + omega_k Delta_k)^T delta'_{l+1}

as the optional perturbation term of the one pass of rnn_core.model (:class:`rnn_core.model.Perturbation`),
so the network and its perturbation are the same code: W is read once per step for every row, a
dense row adds omega_k R h (one matmul for all dense rows), a rank-one row adds omega_k u_k (v_k . h),
and no m x m matrix is formed per row.

The near-initialization statistics of one row (the quantities of the paper's perturbation lemmas):

    r_h         = max_{l=1..L} ||h'_l - h_l|| / ||h_l||
    flips       = max_{l=1..L} ||D'_l - D_l||_0 / m
    r_g         = ||G'(x) - G(x)||_F / ||G(x)||_F
    first_order = |f'(x) - f(x) - <G(x), omega Delta>| / (||G(x)||_F ||omega Delta||_F)

||G' - G||_F comes from small Gram matrices, never from m x m gradients:
G' - G = sum_l (delta'_l - delta_l) h'_{l-1}^T + delta_l (h'_{l-1} - h_{l-1})^T = sum_a M_a N_a^T with
the 2(L-1) pairs (M_a, N_a), and ||sum_a M_a N_a^T||_F^2 = sum_{a,b} (M_a . M_b)(N_a . N_b) (this split
avoids the cancellation of ||G'||^2 + ||G||^2 - 2 <G', G>). <G, R> = sum_l delta_l^T R h_{l-1};
<G, u v^T> = sum_l (delta_l . u)(h_{l-1} . v).

Guards: every ratio is num / den with 0 / 0 := 0 and x / 0 := +inf for x > 0 (||h_l|| = 0 only when
every input up to l is zero, and then h'_l = 0 too; G = 0 for L = 1 and for the step activation, whose
derivative is 0 almost everywhere, so its first-order statistic is +inf as soon as f moves).

The step activation h = 1[g > 0] is supported (the discontinuous negative control): its deltas are 0.
Masks are read from the hidden states: 1[h_l > 0] = 1[g_l > 0] for relu and for the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnn_core._checks import as_sequences
from rnn_core.model import Perturbation, RNNParams, RNNPass, _check_activation, _pass
from rnn_core.numerics import guarded_ratio

__all__ = [
    "PerturbationStats",
    "perturbed_pass",
    "perturbation_statistics",
    "gram_fro_norm",
    "gradient_top_singular",
]


@dataclass(frozen=True)
class PerturbationStats:
    """The statistics of each row k (all (r,) tensors in the network's dtype); see the module docstring.

    r_h, flips, r_g, first_order: the four statistics (+inf where a guarded ratio has a zero
    denominator and a nonzero numerator). grad_change = ||G' - G||_F, grad_norm = ||G||_F,
    linear = <G, omega Delta>, delta_fro = ||omega Delta||_F: the parts of r_g and first_order.
    perturbed: the pass of the r perturbed rows (see :class:`rnn_core.model.RNNPass`).
    """

    r_h: torch.Tensor
    flips: torch.Tensor
    r_g: torch.Tensor
    first_order: torch.Tensor
    grad_change: torch.Tensor
    grad_norm: torch.Tensor
    linear: torch.Tensor
    delta_fro: torch.Tensor
    perturbed: RNNPass


def gram_fro_norm(M: torch.Tensor, N: torch.Tensor) -> torch.Tensor:
    """||sum_a M[k, a] N[k, a]^T||_F for every k: M, N of shape (r, K, m) -> (r,).

    ||sum_a M_a N_a^T||_F^2 = sum_{a,b} (M_a . M_b)(N_a . N_b), from the two (K, K) Grams of each row;
    clamped at 0 against rounding before the square root.
    """
    GM = torch.bmm(M, M.transpose(1, 2))
    GN = torch.bmm(N, N.transpose(1, 2))
    return (GM * GN).sum(dim=(1, 2)).clamp_min(0.0).sqrt()


def _rows(p: RNNParams, X, omega, index, R, U, V, rank_one):
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    n = X.shape[0]
    index = torch.arange(n, device=p.device) if index is None else torch.as_tensor(index, device=p.device).long()
    if index.ndim != 1 or index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= n:
        raise ValueError(f"index must be a non-empty 1-D tensor of row numbers in 0..{n - 1}")
    r = index.numel()
    omega = torch.as_tensor(omega, dtype=p.dtype, device=p.device).reshape(-1)
    if omega.numel() == 1:
        omega = omega.expand(r)
    if omega.shape != (r,) or not bool(torch.isfinite(omega).all()) or bool((omega < 0).any()):
        raise ValueError(f"omega must be one finite number >= 0 or r = {r} of them, got shape {tuple(omega.shape)}")
    if rank_one is None:
        if (R is None) == (U is None):
            raise ValueError("give R (dense rows) or U and V (rank-one rows), or say per row with rank_one")
        rank_one = torch.full((r,), U is not None, dtype=torch.bool, device=p.device)
    rank_one = torch.as_tensor(rank_one, device=p.device).bool().reshape(-1)
    if rank_one.shape != (r,):
        raise ValueError(f"rank_one must have shape ({r},), got {tuple(rank_one.shape)}")
    m = p.m
    if bool((~rank_one).any()):
        if R is None or tuple(R.shape) != (m, m):
            raise ValueError(f"dense rows need R of shape ({m}, {m})")
        R = R.to(device=p.device, dtype=p.dtype)
    if bool(rank_one.any()):
        if U is None or V is None or tuple(U.shape) != (r, m) or tuple(V.shape) != (r, m):
            raise ValueError(f"rank-one rows need U and V of shape ({r}, {m}) (one pair per row)")
        U, V = U.to(device=p.device, dtype=p.dtype), V.to(device=p.device, dtype=p.dtype)
    return X, index, omega, R, U, V, rank_one


def _perturbation(omega, R, U, V, rank_one) -> Perturbation:
    """The pass's perturbation term for the rows k = 0..r-1 (validated arguments of :func:`_rows`)."""
    dense_k = torch.nonzero(~rank_one).flatten()
    rank_one_k = torch.nonzero(rank_one).flatten()
    return Perturbation(
        dense=dense_k, omega_dense=omega[dense_k][:, None], R=R if dense_k.numel() else None,
        rank_one=rank_one_k, omega_rank_one=omega[rank_one_k][:, None],
        U=U[rank_one_k] if rank_one_k.numel() else None, V=V[rank_one_k] if rank_one_k.numel() else None,
    )


def perturbed_pass(
    p: RNNParams,
    X,
    omega,
    *,
    index=None,
    R: torch.Tensor | None = None,
    U: torch.Tensor | None = None,
    V: torch.Tensor | None = None,
    rank_one=None,
    activation: str = "relu",
) -> RNNPass:
    """Forward and backward of W'_k = W + omega_k Delta_k for every row k, in one batched pass.

    X: (n, L, d) sequences; index (r,): the sequence of each row (default: row k is X[k]); omega: (r,)
    scales (or one for all rows); Delta_k = R (an (m, m) matrix shared by the dense rows) or
    U[k] V[k]^T (U, V of shape (r, m); rows that are not rank-one ignore theirs); rank_one (r,) bool
    says which (default: all dense when only R is given, all rank-one when only U, V are given).
    Returns the pass of the r rows (h'_l, f'(x_k), delta'_l for l = 2..L; see :class:`RNNPass`).
    """
    _check_activation(activation)
    X, index, omega, R, U, V, rank_one = _rows(p, X, omega, index, R, U, V, rank_one)
    return _pass(p, X, activation, backward=True, perturbation=_perturbation(omega, R, U, V, rank_one), index=index)


def perturbation_statistics(
    p: RNNParams,
    X,
    omega,
    *,
    index=None,
    R: torch.Tensor | None = None,
    U: torch.Tensor | None = None,
    V: torch.Tensor | None = None,
    rank_one=None,
    activation: str = "relu",
) -> PerturbationStats:
    """r_h, flips, r_g and first_order (module docstring) of every row of :func:`perturbed_pass`.

    Same arguments as :func:`perturbed_pass`. The pass runs twice, with the same code: once on the n
    sequences of X under W (shared by every row; G(x) is the gradient of the network with the same
    ``activation``, zero for the step), once on the r perturbed rows. (Two calls, not one batch of
    n + r rows: BLAS may round a row differently at another position of a product, and at
    omega_k = 0 the two must agree exactly for the statistics to be 0.) ||Delta_k||_F is ||R||_F for
    dense rows and ||u_k|| ||v_k|| for rank-one rows.
    """
    _check_activation(activation)
    X, index, omega, R, U, V, rank_one = _rows(p, X, omega, index, R, U, V, rank_one)
    m = p.m
    base = _pass(p, X, activation, backward=True)
    pert = _pass(p, X, activation, backward=True, perturbation=_perturbation(omega, R, U, V, rank_one), index=index)
    L = base.length
    r = index.numel()

    h_base, h_pert = base.hidden_states()[index], pert.hidden_states()  # (r, L, m): h_l(x_k) and h'_l(x_k)
    r_h = guarded_ratio((h_pert - h_base).norm(dim=2), h_base.norm(dim=2), zero_by_zero=0.0).max(dim=1).values
    # 1[g > 0] = 1[h > 0] for relu and step
    flips = ((h_pert > 0) != (h_base > 0)).sum(dim=2).max(dim=1).values.to(p.dtype) / m

    zeros = torch.zeros(r, dtype=p.dtype, device=p.device)
    if L >= 2:
        # (r, L-1, m): delta_l and h_{l-1} (l = 2..L) of x_k under W, and delta'_l, h'_{l-1} under W'_k
        deltas_base, h_prev_base = base.deltas[index], base.h_prev[index]
        deltas_pert, h_prev_pert = pert.deltas, pert.h_prev
        grad_change = gram_fro_norm(torch.cat([deltas_pert - deltas_base, deltas_base], dim=1),
                                    torch.cat([h_prev_pert, h_prev_pert - h_prev_base], dim=1))
        grad_norm = gram_fro_norm(deltas_base, h_prev_base)
        unit = zeros.clone()  # <G, Delta_k> for the unscaled direction
        dense = ~rank_one
        if bool(dense.any()):
            R_h = torch.matmul(h_prev_base[dense], R.T)  # (r_d, L-1, m): R h_{l-1}
            unit[dense] = (deltas_base[dense] * R_h).sum(dim=(1, 2))
        if bool(rank_one.any()):
            ui, vi = U[rank_one][:, None, :], V[rank_one][:, None, :]
            unit[rank_one] = ((deltas_base[rank_one] * ui).sum(dim=2)
                              * (h_prev_base[rank_one] * vi).sum(dim=2)).sum(dim=1)
    else:  # W does not act on length-1 sequences: G = 0
        grad_change, grad_norm, unit = zeros, zeros.clone(), zeros.clone()
    direction_fro = torch.empty(r, dtype=p.dtype, device=p.device)
    if bool((~rank_one).any()):
        direction_fro[~rank_one] = torch.linalg.norm(R)
    if bool(rank_one.any()):
        direction_fro[rank_one] = U[rank_one].norm(dim=1) * V[rank_one].norm(dim=1)
    linear = omega * unit
    delta_fro = omega * direction_fro
    r_g = guarded_ratio(grad_change, grad_norm, zero_by_zero=0.0)
    # f(x_k) recomputed in the perturbed rows' shape: where h'_L = h_L (L = 1, omega = 0) the two
    # products then round identically and f' - f is exactly 0, not a rounding difference
    f_base, f_pert = base.h_last[index] @ p.B, pert.out
    first_order = guarded_ratio((f_pert - f_base - linear).abs(), grad_norm * delta_fro, zero_by_zero=0.0)
    return PerturbationStats(
        r_h=r_h,
        flips=flips,
        r_g=r_g,
        first_order=first_order,
        grad_change=grad_change,
        grad_norm=grad_norm,
        linear=linear,
        delta_fro=delta_fro,
        perturbed=pert,
    )


def gradient_top_singular(deltas: torch.Tensor, h_prev: torch.Tensor, seed: int = 0):
    """Top singular triples (U, V, sigma) of G(x_i) = sum_{l>=2} delta_l h_{l-1}^T for every i.

    deltas, h_prev: (n, L-1, m) with deltas[:, l-2] = delta_l and h_prev[:, l-2] = h_{l-1}, l = 2..L
    (as from :func:`rnn_core.ntk.ntk_features`). Exact: G = Dm^T Hm with Dm = deltas[i], Hm = h_prev[i];
    thin QRs Dm^T = Q1 R1, Hm^T = Q2 R2 give G = Q1 (R1 R2^T) Q2^T, whose top singular pair comes from
    the small SVD of R1 R2^T. A zero gradient (L = 1, or the step activation) gets random unit vectors
    drawn from ``seed`` and sigma = 0. Returns U, V of shape (n, m) (unit rows) and sigma (n,), in the
    dtype of the inputs.
    """
    n, w_steps, m = deltas.shape
    dtype, device = deltas.dtype, deltas.device
    U = torch.empty((n, m), dtype=dtype, device=device)
    V = torch.empty((n, m), dtype=dtype, device=device)
    sigma = torch.zeros(n, dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(int(seed) + 17)
    for i in range(n):
        top = 0.0
        if w_steps >= 1:
            Q1, R1 = torch.linalg.qr(deltas[i].T)  # delta_l, l = 2..L
            Q2, R2 = torch.linalg.qr(h_prev[i].T)  # h_{l-1}
            Us, s, Vh = torch.linalg.svd(R1 @ R2.T)
            top = float(s[0])
        if top > 0.0:
            U[i] = Q1 @ Us[:, 0]
            V[i] = Q2 @ Vh[0]
            sigma[i] = top
        else:
            a = torch.randn(m, generator=gen, dtype=torch.float64)
            b = torch.randn(m, generator=gen, dtype=torch.float64)
            U[i] = (a / a.norm()).to(device=device, dtype=dtype)
            V[i] = (b / b.norm()).to(device=device, dtype=dtype)
    return U, V, sigma
