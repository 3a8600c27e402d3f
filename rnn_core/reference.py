"""Straightforward reference implementations of the core's fast paths.

These are the implementations the core used before its fast paths (issue 12): a time-major forward
that stores every pre-activation, a backward pass over all L steps, the structured empirical NTK from
batch-major copies of the features in blocks of whole sequences, and a GD loop that forms the gradient
explicitly. The fast paths in :mod:`rnn_core.model`, :mod:`rnn_core.ntk` and :mod:`rnn_core.train`
must agree with them to rounding (float64: 1e-12 relative); the tests compare the two, and the
benchmarks time both in the same process. Same model and conventions as :mod:`rnn_core.model`:

    h_0 = 0,   g_l = W h_{l-1} + A X_l,   h_l = relu(g_l),   f(x) = B h_L
    delta_L = D_L B^T,   delta_l = D_l W^T delta_{l+1},   D_l = diag(1[g_l > 0])
    H_m(x, x') = (1/m) sum_{l, l' >= 2} <delta_l(x), delta_{l'}(x')> <h_{l-1}(x), h_{l'-1}(x')>
    W_{t+1} = W_t - eta sum_i r_i sum_{l >= 2} delta_l(x_i) h_{l-1}(x_i)^T,   r = f(W_t, X) - f(W_0, X) - y
"""

from __future__ import annotations

import torch

from rnn_core._checks import as_sequences
from rnn_core.model import Forward, RNNParams

__all__ = [
    "forward_reference",
    "backward_deltas_reference",
    "empirical_ntk_structured_reference",
    "features_reference",
    "gram_reference",
    "train_gd_reference",
]

_BLOCK_ROWS = 512


def forward_reference(p: RNNParams, X, *, activation: str = "relu") -> Forward:
    """The forward pass as a plain loop: g_l = A X_l + W h_{l-1} (addmm), h_l = act(g_l)."""
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    n, L, _ = X.shape
    m = p.m
    U = torch.matmul(X.transpose(0, 1), p.A.T)  # (L, n, m)
    h = torch.zeros((L + 1, n, m), device=p.device, dtype=p.dtype)
    g = torch.empty((L, n, m), device=p.device, dtype=p.dtype)
    Wt = p.W.T
    for l in range(L):
        torch.addmm(U[l], h[l], Wt, out=g[l])
        if activation == "relu":
            torch.clamp_min(g[l], 0.0, out=h[l + 1])
        else:
            h[l + 1] = (g[l] > 0).to(p.dtype)
    out = h[L] @ p.B
    return Forward(h_tm=h, g_tm=g, out=out, activation=activation)


def backward_deltas_reference(p: RNNParams, fw: Forward) -> torch.Tensor:
    """Time-major deltas (L, n, m), out[l-1] = delta_l, from the stored pre-activations of ``fw``."""
    g = fw.g_tm
    L = g.shape[0]
    deltas = torch.empty_like(g)
    if fw.activation == "step":
        deltas.zero_()
        return deltas
    torch.mul(g[L - 1] > 0, p.B, out=deltas[L - 1])
    for l in range(L - 2, -1, -1):
        torch.mm(deltas[l + 1], p.W, out=deltas[l])
        deltas[l].mul_(g[l] > 0)
    return deltas


def features_reference(p: RNNParams, X: torch.Tensor, activation: str = "relu"):
    """(D, Hp), both (n, L-1, m) contiguous: D[:, k] = delta_{k+2}, Hp[:, k] = h_{k+1}."""
    fw = forward_reference(p, X, activation=activation)
    deltas = backward_deltas_reference(p, fw)
    D = deltas[1:].transpose(0, 1).contiguous()
    Hp = fw.h_tm[1:-1].transpose(0, 1).contiguous()
    return D, Hp


def _block_kernel(Da, Ha, Db, Hb, m: int) -> torch.Tensor:
    ca, Lp, _ = Da.shape
    cb = Db.shape[0]
    Gd = Da.reshape(ca * Lp, m) @ Db.reshape(cb * Lp, m).T
    Gh = Ha.reshape(ca * Lp, m) @ Hb.reshape(cb * Lp, m).T
    if Gd.dtype != torch.float64:
        Gd, Gh = Gd.double(), Gh.double()
    Gd.mul_(Gh)
    return Gd.view(ca, Lp, cb, Lp).sum(dim=(1, 3)).div_(m)


def empirical_ntk_structured_reference(p: RNNParams, X, X2=None, *, activation: str = "relu") -> torch.Tensor:
    """H_m(X, X2) (float64) from blocks of whole sequences: (c L') x (c L') Grams, product, block sum."""
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    if X2 is not None:
        X2 = as_sequences(X2, "X2", d=p.d, device=p.device, dtype=p.dtype)
    n, L, _ = X.shape
    n2 = n if X2 is None else X2.shape[0]
    H = torch.zeros((n, n2), device=p.device, dtype=torch.float64)
    if L < 2:
        return H
    D, Hp = features_reference(p, X, activation)
    D2, Hp2 = (None, None) if X2 is None else features_reference(p, X2, activation)
    return gram_reference(D, Hp, D2, Hp2, p.m, out=H)


def gram_reference(D, Hp, D2, Hp2, m: int, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """The Gram step: (1/m) sum over L' x L' blocks of (D D2^T) * (Hp Hp2^T), from (n, L', m) features.

    D2 = Hp2 = None means X2 = X: the upper block triangle is computed and mirrored.
    """
    sym = D2 is None
    if sym:
        D2, Hp2 = D, Hp
    n, Lp, _ = D.shape
    n2 = D2.shape[0]
    H = torch.zeros((n, n2), device=D.device, dtype=torch.float64) if out is None else out
    c = max(1, _BLOCK_ROWS // Lp)
    for a in range(0, n, c):
        a1 = min(n, a + c)
        start = a if sym else 0
        for b in range(start, n2, c):
            b1 = min(n2, b + c)
            blk = _block_kernel(D[a:a1], Hp[a:a1], D2[b:b1], Hp2[b:b1], m)
            H[a:a1, b:b1] = blk
            if sym and b != a:
                H[b:b1, a:a1] = blk.T
    return H


def train_gd_reference(p: RNNParams, X, y: torch.Tensor, *, eta: float, steps: int) -> tuple[torch.Tensor, list[float]]:
    """``steps`` plain GD updates of W from p.W (centered squared loss); returns (W_T, [loss_0, ..., loss_T])."""
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    y = y.to(device=p.device, dtype=p.dtype)
    f0 = forward_reference(p, X).out
    W = p.W.clone()
    losses = []
    for t in range(steps + 1):
        cur = p.with_W(W)
        fw = forward_reference(cur, X)
        r = fw.out - f0 - y
        losses.append(float(0.5 * (r @ r)))
        if t == steps:
            break
        deltas = backward_deltas_reference(cur, fw)
        L, n, m = deltas.shape
        if L == 1:
            continue
        weighted = (deltas[1:] * r[None, :, None]).reshape((L - 1) * n, m)
        hidden = fw.h_tm[1:L].reshape((L - 1) * n, m)
        W.sub_(weighted.T @ hidden, alpha=eta)
    return W, losses
