"""The independent oracle of rnn_core, and the baselines the benchmarks time against it.

Nothing here calls the pass of :mod:`rnn_core.model`; the tests compare that pass (and everything
built on it: the NTK features, the structured kernel, training, the perturbed networks) with these
implementations, and the benchmarks time both in the same process. Same model and conventions:

    h_0 = 0,   g_l = W h_{l-1} + A X_l,   h_l = relu(g_l),   f(x) = B h_L
    delta_L = D_L B^T,   delta_l = D_l W^T delta_{l+1},   D_l = diag(1[g_l > 0])
    grad_W f(x) = sum_l delta_l h_{l-1}^T
    H_m(x, x') = (1/m) <grad_W f(x), grad_W f(x')>_F
    W_{t+1} = W_t - eta sum_i r_i grad_W f(W_t, x_i),   r = f(W_t, X) - f(W_0, X) - y

The oracle, by automatic differentiation of a plain forward pass:
- :func:`network_output`: f(W, x) for one sequence with plain ops (torch.func-friendly);
- :func:`explicit_pass`: per sequence, h_l and f by a plain loop, delta_l = df/dg_l and grad_W f by
  torch.autograd, at any recurrent matrix (so a perturbed network W + Delta is built explicitly);
- :func:`ntk_jacobian_contraction` (torch.func ``vmap(jacrev)``) and :func:`ntk_vector_products`
  (``vjp`` / ``jvp`` per column, PyTorch's NTK tutorial, method 2).

The baselines (straightforward, no autograd): a time-major forward that stores every pre-activation
(:func:`forward_reference`), a backward over all L steps, the structured NTK from copies of the
features in blocks of whole sequences, the NTK from full Grams of all L steps
(:func:`straightforward_ntk`), GD with the gradient formed explicitly (:func:`train_gd_reference`)
or by autograd (:func:`train_gd_autograd`), and the infinite-width kernel of SPEC section 2 in its
textbook two-pass form (:func:`two_pass_ntk`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from rnn_core._checks import as_sequences
from rnn_core.model import RNNParams

__all__ = [
    "ExplicitPass",
    "ReferencePass",
    "network_output",
    "explicit_pass",
    "ntk_jacobian_contraction",
    "ntk_vector_products",
    "forward_reference",
    "backward_deltas_reference",
    "features_reference",
    "gram_reference",
    "empirical_ntk_structured_reference",
    "straightforward_ntk",
    "train_gd_reference",
    "train_gd_autograd",
    "two_pass_ntk",
]

_BLOCK_ROWS = 512


# --- the oracle: automatic differentiation of a plain forward pass --------------------------------


def network_output(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """f(W, x) = B h_L for one sequence x of shape (L, d), written with plain ops for torch.func."""
    h = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
    for l in range(x.shape[0]):
        h = torch.relu(W @ h + A @ x[l])
    return B @ h


class ExplicitPass(NamedTuple):
    """What :func:`explicit_pass` returns, batch-major.

    hidden (n, L+1, m): hidden[:, l] = h_l (hidden[:, 0] = h_0 = 0); deltas (n, L, m):
    deltas[:, l-1] = delta_l = df/dg_l; out (n,): f(x); grad_W (n, m, m): grad_W f(x).
    """

    hidden: torch.Tensor
    deltas: torch.Tensor
    out: torch.Tensor
    grad_W: torch.Tensor


def explicit_pass(p: RNNParams, X, W: torch.Tensor | None = None, *, activation: str = "relu") -> ExplicitPass:
    """h_l, f, delta_l = df/dg_l and grad_W f of every sequence of X at recurrent matrix W (default p.W).

    One sequence at a time: a plain loop g_l = W h_{l-1} + A X_l, h_l = act(g_l), f = B h_L, and
    torch.autograd.grad of f with respect to every g_l and to W. The step activation h = 1[g > 0]
    has derivative 0 almost everywhere (autograd sees a constant): its deltas and gradient are 0.
    Holds n m^2 numbers (the gradients): for tests at small n and m.
    """
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    W = p.W if W is None else W.to(device=p.device, dtype=p.dtype)
    n, L, _ = X.shape
    m = p.m
    hidden = torch.zeros((n, L + 1, m), dtype=p.dtype, device=p.device)
    deltas = torch.zeros((n, L, m), dtype=p.dtype, device=p.device)
    out = torch.zeros(n, dtype=p.dtype, device=p.device)
    grad_W = torch.zeros((n, m, m), dtype=p.dtype, device=p.device)
    for i in range(n):
        Wi = W.detach().clone().requires_grad_(activation == "relu")
        h = torch.zeros(m, dtype=p.dtype, device=p.device)
        gs = []
        for l in range(L):
            g = Wi @ h + p.A @ X[i, l]
            h = torch.relu(g) if activation == "relu" else (g > 0).to(p.dtype)
            gs.append(g)
            hidden[i, l + 1] = h.detach()
        f = p.B @ h
        out[i] = f.detach()
        if activation == "relu":
            grads = torch.autograd.grad(f, gs + [Wi], allow_unused=True)
            for l, gr in enumerate(grads[:-1]):
                if gr is not None:
                    deltas[i, l] = gr
            if grads[-1] is not None:
                grad_W[i] = grads[-1]
    return ExplicitPass(hidden=hidden, deltas=deltas, out=out, grad_W=grad_W)


def ntk_jacobian_contraction(p: RNNParams, X: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
    """H_m(X, X2) from the (n, m^2) Jacobian of f in W (torch.func ``vmap(jacrev)``), float64.

    X, X2: validated (n, L, d) tensors on p's device and dtype. Memory O(n m^2).
    """
    from torch.func import jacrev, vmap

    jac = vmap(jacrev(network_output), in_dims=(None, None, None, 0))
    J = jac(p.W, p.A, p.B, X).reshape(X.shape[0], -1)
    J2 = J if X2 is None else jac(p.W, p.A, p.B, X2).reshape(X2.shape[0], -1)
    return (J.double() @ J2.double().T) / p.m


def ntk_vector_products(p: RNNParams, X: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
    """H_m(X, X2) one column at a time: a vjp then a jvp per column (torch.func), float64. Memory O(m^2)."""
    from torch.func import jvp, vjp, vmap

    X2 = X if X2 is None else X2

    def f_batch(W, Xb):
        return vmap(network_output, in_dims=(None, None, None, 0))(W, p.A, p.B, Xb)

    _, vjp_fn = vjp(lambda W: f_batch(W, X2), p.W)
    cols = []
    for j in range(X2.shape[0]):
        e = torch.zeros(X2.shape[0], dtype=p.dtype, device=p.device)
        e[j] = 1.0
        (v,) = vjp_fn(e)
        _, col = jvp(lambda W: f_batch(W, X), (p.W,), (v,))
        cols.append(col)
    return torch.stack(cols, dim=1).double() / p.m


# --- the baselines: straightforward loops, time-major ----------------------------------------------


class ReferencePass(NamedTuple):
    """What :func:`forward_reference` returns, time-major (each step one contiguous block).

    hidden (L+1, n, m): hidden[l] = h_l (hidden[0] = 0); pre (L, n, m): pre[l-1] = g_l; out (n,).
    """

    hidden: torch.Tensor
    pre: torch.Tensor
    out: torch.Tensor
    activation: str = "relu"


def forward_reference(p: RNNParams, X, *, activation: str = "relu") -> ReferencePass:
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
    return ReferencePass(hidden=h, pre=g, out=out, activation=activation)


def backward_deltas_reference(p: RNNParams, fw: ReferencePass) -> torch.Tensor:
    """Time-major deltas (L, n, m), out[l-1] = delta_l, from the stored pre-activations of ``fw``."""
    g = fw.pre
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
    """(deltas, h_prev), both (n, L-1, m) contiguous: deltas[:, l-2] = delta_l, h_prev[:, l-2] = h_{l-1}."""
    fw = forward_reference(p, X, activation=activation)
    deltas = backward_deltas_reference(p, fw)
    return deltas[1:].transpose(0, 1).contiguous(), fw.hidden[1:-1].transpose(0, 1).contiguous()


def _block_kernel(deltas_a, h_a, deltas_b, h_b, m: int) -> torch.Tensor:
    ca, w_steps, _ = deltas_a.shape
    cb = deltas_b.shape[0]
    gram_deltas = deltas_a.reshape(ca * w_steps, m) @ deltas_b.reshape(cb * w_steps, m).T
    gram_h = h_a.reshape(ca * w_steps, m) @ h_b.reshape(cb * w_steps, m).T
    if gram_deltas.dtype != torch.float64:
        gram_deltas, gram_h = gram_deltas.double(), gram_h.double()
    gram_deltas.mul_(gram_h)
    return gram_deltas.view(ca, w_steps, cb, w_steps).sum(dim=(1, 3)).div_(m)


def empirical_ntk_structured_reference(p: RNNParams, X, X2=None, *, activation: str = "relu") -> torch.Tensor:
    """H_m(X, X2) (float64) from blocks of whole sequences: (c (L-1)) x (c (L-1)) Grams, product, block sum."""
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    if X2 is not None:
        X2 = as_sequences(X2, "X2", d=p.d, device=p.device, dtype=p.dtype)
    n, L, _ = X.shape
    n2 = n if X2 is None else X2.shape[0]
    H = torch.zeros((n, n2), device=p.device, dtype=torch.float64)
    if L < 2:
        return H
    deltas, h_prev = features_reference(p, X, activation)
    deltas2, h_prev2 = (None, None) if X2 is None else features_reference(p, X2, activation)
    return gram_reference(deltas, h_prev, deltas2, h_prev2, p.m, out=H)


def gram_reference(deltas, h_prev, deltas2, h_prev2, m: int, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """The Gram step: (1/m) sum over (L-1) x (L-1) blocks of (deltas deltas2^T) * (h_prev h_prev2^T).

    deltas2 = h_prev2 = None means X2 = X: the upper block triangle is computed and mirrored.
    """
    sym = deltas2 is None
    if sym:
        deltas2, h_prev2 = deltas, h_prev
    n, w_steps, _ = deltas.shape
    n2 = deltas2.shape[0]
    H = torch.zeros((n, n2), device=deltas.device, dtype=torch.float64) if out is None else out
    c = max(1, _BLOCK_ROWS // w_steps)
    for a in range(0, n, c):
        a1 = min(n, a + c)
        start = a if sym else 0
        for b in range(start, n2, c):
            b1 = min(n2, b + c)
            blk = _block_kernel(deltas[a:a1], h_prev[a:a1], deltas2[b:b1], h_prev2[b:b1], m)
            H[a:a1, b:b1] = blk
            if sym and b != a:
                H[b:b1, a:a1] = blk.T
    return H


def straightforward_ntk(p: RNNParams, X) -> torch.Tensor:
    """H_m(X, X) from full Grams of all L steps (l = 1 included), no symmetry, no chunking, float64."""
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    n, L, _ = X.shape
    fw = forward_reference(p, X)
    deltas = backward_deltas_reference(p, fw).transpose(0, 1).reshape(n * L, p.m)
    h_prev = fw.hidden[:-1].transpose(0, 1).reshape(n * L, p.m)
    H = ((deltas @ deltas.T) * (h_prev @ h_prev.T)).view(n, L, n, L).sum(dim=(1, 3)) / p.m
    return H.double()


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
        hidden = fw.hidden[1:L].reshape((L - 1) * n, m)
        W.sub_(weighted.T @ hidden, alpha=eta)
    return W, losses


def train_gd_autograd(p: RNNParams, X, y: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
    """``steps`` GD updates of W from p.W with the gradient of the centered squared loss by torch.autograd."""
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    y = y.to(device=p.device, dtype=p.dtype)

    def outputs(W):
        h = torch.zeros(X.shape[0], p.m, dtype=p.dtype, device=p.device)
        for l in range(X.shape[1]):
            h = torch.relu(h @ W.T + X[:, l] @ p.A.T)
        return h @ p.B

    with torch.no_grad():
        f0 = outputs(p.W)
    W = p.W.clone().requires_grad_(True)
    for _ in range(steps):
        r = outputs(W) - f0 - y
        loss = 0.5 * (r @ r)
        (g,) = torch.autograd.grad(loss, W)
        with torch.no_grad():
            W -= eta * g
    return W.detach()


def two_pass_ntk(X: torch.Tensor) -> torch.Tensor:
    """H_inf of SPEC section 2 literally: store every K_l and Kdot_l, then the backward products P_l.

    H_inf = sum_l P_l K_{l-1} with P_l = (1/2) prod_{k>=l} Kdot_k; O(L n^2) memory, float64.
    """
    X = X.to(torch.float64)
    n, L, _ = X.shape
    q = torch.cumsum((X * X).sum(2), 1)
    Ks, Kdots = [torch.zeros(n, n, dtype=torch.float64, device=X.device)], []
    for l in range(L):
        S = Ks[-1] + X[:, l] @ X[:, l].T
        norm = torch.sqrt(torch.outer(q[:, l], q[:, l]))
        c = (S / norm).clamp(-1, 1)
        c.fill_diagonal_(1.0)
        th = torch.arccos(c)
        Ks.append(norm / math.pi * (torch.sin(th) + (math.pi - th) * c))
        Kdots.append((math.pi - th) / math.pi)
    H = torch.zeros(n, n, dtype=torch.float64, device=X.device)
    P = 0.5 * torch.ones(n, n, dtype=torch.float64, device=X.device)
    for l in range(L - 1, -1, -1):
        P = P * Kdots[l]
        H += P * Ks[l]
    return H
