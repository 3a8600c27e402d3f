"""Counterexample search (:mod:`claims.search`) for FWD, BWD and GRAD: the worst input of the regime at
one fixed random initialization.

FWD states 1/2 <= ||h_l(x)||^2 / q_l(x) <= 2 and BWD 1/4 <= ||delta_l(x)||^2 / m <= 1 for EVERY input x
of the regime and every l, with high probability over the initialization. A search cell fixes the
network (W, A ~ N(0, 2/m), B ~ N(0, 1), the draw's init seed) and searches the input sequence x
(n = 1, shape (1, L, d)) of the regime (SPEC section 3: unit steps; X_1 = e_d and ||X_l|| <= 0.05;
step norms in [1/4, 4]) for the largest measured constant

    c(x) = max(r_max / r_inf, r_inf / r_min)   over l = 1..L,   r_inf = 1 (FWD), 1/2 (BWD),

score = c / 2 (> 1 a counterexample to the declared c = 2). GRAD is the same with the one ratio
r(x) = ||grad_W f(x)||_F^2 / (m H_inf(x, x)) (r_inf = 1), H_inf(x, x) = (1/2) sum_{l<L} q_l and
||grad_W f||_F^2 = sum_{l, l' >= 2} <delta_l, delta_l'> <h_{l-1}, h_{l'-1}>.
The exact score is the claim's own ratio (``fwd.forward_ratios``, ``bwd.backward_ratios``,
``grad.gradient_ratios`` on ``rnn_core``'s network, float64); the gradient
comes from a plain autograd transcription of the forward pass (h_l = relu(W h_{l-1} + A X_l)) and, for
BWD and GRAD, of the backward pass delta_L = D_L B^T, delta_l = D_l W^T delta_{l+1} with the masks D_l = 1[g_l > 0]
replaced by sigmoid(g_l / tau_l), tau_l = 0.1 std(g_l): ||delta_l||^2 depends on x only through the
masks, which are piecewise constant, so the exact ratio has zero gradient almost everywhere.

Which claims fit a search, and why the rest do not:
- NTK-PD (every dataset with separation >= 0.01), PERT (every Delta with ||Delta||_2 = omega), FWD and
  BWD (every input) are universally quantified over a continuous constraint set with a cheap,
  piecewise-differentiable margin: searched.
- GRAD (||grad_W f(x)||^2 / (m H_inf(x, x)) for every x) fits the same way: ``search_grad``.
- NTK-PD-M (lambda_min(H_m) >= lambda_min(H_inf) / 2 for every dataset) fits in principle (datasets as
  in NTK-PD, the empirical kernel through autograd), at O(n^2 L^2 m) per step.
- NTK-CONV, LAZY, GEN-ADD, GEN-KRR, CPLX-ADD, CPLX-NVAR, RAND-LABEL are statements about a distribution
  (a rate in m, a trained network's test loss on fresh data, sample complexities n_eps(L), the typical
  complexity of random labels) or about a training run: there is no "for every input" whose worst case
  is the statement; an adversarial dataset would test another claim. NTK-ID is an identity checked to
  rounding on every input: a search could only look for rounding, not for a counterexample.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from claims.base import Context

__all__ = ["SEARCH", "SMOOTH_MASK", "search_cells", "search_fwd", "search_bwd", "search_grad", "forward_autograd",
           "backward_autograd", "ratio_score"]

C_DECLARED = 2.0
#: sigmoid temperature of BWD's smoothed masks, relative to the spread of g_l (objective only)
SMOOTH_MASK = 0.1

#: the search cells per profile: widths, lengths, regimes
SEARCH: dict[str, dict[str, tuple]] = {
    "smoke": {"widths": (64,), "lengths": (2,), "regimes": ("unit",)},
    "quick": {"widths": (128, 2048), "lengths": (2, 8), "regimes": ("unit",)},
    "standard": {"widths": (512, 8192), "lengths": (2, 8, 32), "regimes": ("normalized", "unit", "unnormalized")},
    "full": {"widths": (1024, 32768), "lengths": (2, 8, 32, 128), "regimes": ("normalized", "unit", "unnormalized")},
}


def search_cells(profile: Any, claim_id: str) -> list[dict]:
    """The search cells of FWD, BWD or GRAD under ``profile``: {"kind": "search", "m", "L", "regime"}."""
    if claim_id not in ("FWD", "BWD", "GRAD"):
        raise ValueError(f"claim_id must be FWD, BWD or GRAD, got {claim_id!r}")
    name = getattr(profile, "name", profile)
    if name not in SEARCH:
        raise ValueError(f"search cells: unknown profile {name!r}; known: {', '.join(SEARCH)}")
    g = SEARCH[name]
    return [{"kind": "search", "m": int(m), "L": int(L), "regime": regime}
            for regime in g["regimes"] for L in g["lengths"] for m in g["widths"]]


def ratio_score(r: torch.Tensor, limit: float) -> float:
    """c / C_DECLARED with c = max(r_max / limit, limit / r_min) over the defined (non-NaN) entries."""
    vals = r[~torch.isnan(r)]
    if vals.numel() == 0:
        return math.nan
    r_min, r_max = float(vals.min()), float(vals.max())
    c = max(r_max / limit, limit / r_min if r_min > 0 else math.inf)
    return c / C_DECLARED


def forward_autograd(p, X: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(h_1..h_L, g_1..g_L) of one batch by out-of-place ops (autograd through X): g_l = W h_{l-1} + A X_l."""
    h = torch.zeros((X.shape[0], p.m), dtype=X.dtype, device=X.device)
    hs, gs = [], []
    for l in range(X.shape[1]):
        g = h @ p.W.T + X[:, l] @ p.A.T
        h = torch.relu(g)
        hs.append(h)
        gs.append(g)
    return hs, gs


def backward_autograd(p, gs: list[torch.Tensor], smooth: float = SMOOTH_MASK) -> list[torch.Tensor]:
    """delta_1..delta_L with the masks 1[g_l > 0] replaced by sigmoid(g_l / (smooth std g_l))."""
    def mask(g):
        tau = smooth * g.detach().std(dim=1, keepdim=True).clamp_min(1e-300)
        return torch.sigmoid(g / tau)

    delta = mask(gs[-1]) * p.B
    out = [delta]
    for g in reversed(gs[:-1]):
        delta = mask(g) * (delta @ p.W)
        out.append(delta)
    return out[::-1]


def _network(cell: dict, base: dict, ctx: Context):
    import rnn_core

    return rnn_core.init_params(int(cell["m"]), int(base["d"]), seed=int(base["init_seed"]), device=ctx.device,
                                dtype=torch.float64)


def _problem(cell: dict, ctx: Context, which: str):
    from claims.catalogue.ntk_pd import project_regime, search_feasible
    from claims.search import SearchProblem
    from claims.strategies import recipes
    from rnn_core.targets import TargetSpec

    L, regime = int(cell["L"]), cell["regime"]
    limit = 0.5 if which == "BWD" else 1.0
    nets: dict[tuple, Any] = {}

    def net(base):
        key = (int(base["init_seed"]), int(base["d"]))
        if key not in nets:
            nets.clear()
            nets[key] = _network(cell, base, ctx)
        return nets[key]

    def start(recipe):
        from rnn_core.data import make_dataset

        X, _ = make_dataset(recipe)
        return X.to(device=ctx.device, dtype=torch.float64), {"init_seed": int(recipe.init_seed), "d": int(recipe.d)}

    def score(X, base):
        if which == "FWD":
            from claims.catalogue.fwd import forward_ratios

            return ratio_score(forward_ratios(net(base), X), limit)
        if which == "GRAD":
            from claims.catalogue.grad import gradient_ratios

            return ratio_score(gradient_ratios(net(base), X)[0], limit)
        from claims.catalogue.bwd import backward_ratios

        return ratio_score(backward_ratios(net(base), X), limit)

    def objective(X, base):
        p = net(base)
        hs, gs = forward_autograd(p, X)
        if which == "FWD":
            q = torch.cumsum((X * X).sum(dim=2), dim=1)
            r = torch.stack([(h * h).sum(dim=1) for h in hs], dim=1) / q
        elif which == "GRAD":  # one sequence: ||sum_{l>=2} delta_l h_{l-1}^T||_F^2 / (m (1/2) sum_{l<L} q_l)
            deltas = torch.cat(backward_autograd(p, gs)[1:], dim=0)  # delta_l, l = 2..L
            h_prev = torch.cat(hs[:-1], dim=0)  # h_{l-1}, l = 2..L
            q = torch.cumsum((X * X).sum(dim=2), dim=1)
            r = ((deltas @ deltas.T) * (h_prev @ h_prev.T)).sum() / (p.m * 0.5 * q[0, :-1].sum())
        else:
            r = torch.stack([(d * d).sum(dim=1) for d in backward_autograd(p, gs)], dim=1) / p.m
        return torch.log(torch.maximum(r.max() / limit, limit / r.min()))

    return SearchProblem(
        strategy=recipes(n=1, L=L, regime=regime, target=TargetSpec(family="random", seed=0)),
        start=start,
        score=score,
        objective=objective,
        project=lambda X, base: project_regime(X, regime),
        feasible=lambda X, base: search_feasible(X, regime, floor=0.0),
        constant=lambda s: C_DECLARED * s,
        declared=C_DECLARED,
        constant_name="c",
    )


def search_fwd(cell: dict, ctx: Context):
    """FWD's search problem (``Claim.search``): c = max over l of ||h_l||^2 / q_l and its inverse."""
    return _problem(cell, ctx, "FWD")


def search_grad(cell: dict, ctx: Context):
    """GRAD's search problem (``Claim.search``): c = max(r, 1 / r), r = ||grad_W f(x)||_F^2 / (m H_inf(x, x))."""
    return _problem(cell, ctx, "GRAD")


def search_bwd(cell: dict, ctx: Context):
    """BWD's search problem (``Claim.search``): c = max over l of 2 ||delta_l||^2 / m and its inverse."""
    return _problem(cell, ctx, "BWD")
