"""GRAD: the gradient norm at initialization is Theta(sqrt m) times poly(L), without input normalization
(SPEC section 4, row GRAD).

Math. With grad_W f(x) = sum_l delta_l h_{l-1}^T (SPEC section 1), at init and for every input x,

    1/2 <= ||grad_W f(x)||_F^2 / (m H_inf(x, x)) <= 2,       H_inf(x, x) = (1/2) sum_{l=0}^{L-1} q_l,

so ||grad_W f(x)||_F = Theta(sqrt m) sqrt(H_inf(x, x)), a polynomial in L and the input norms.

Computation. The m x m gradient is never formed: ||grad_W f(x)||_F^2 = sum_{l, l'} <delta_l, delta_l'>
<h_{l-1}, h_{l'-1}> = m H_m(x, x), from the two (L-1) x (L-1) Gram matrices of the deltas and of the
previous hidden states (l = 2..L; the l = 1 term vanishes as h_0 = 0), elementwise product, full sum.
The cross-time terms l != l' are included; ``cross_frac`` reports their largest share over the batch.
H_inf(x, x) is the closed form (``rnn_core.infinite_ntk_diag``). The rule, cells and threshold searches of
:mod:`claims.catalogue._ratio` with r_inf = 1, c = 2.
At L = 2, ||grad||^2 = ||delta_2||^2 ||h_1||^2 does not involve W's scale, so the W ~ N(0, 4/m) control
sits at the shortest length >= 4, where the ratio grows like 2^L.
"""

from __future__ import annotations

import math

import torch

from claims.catalogue import _search_stability
from claims.catalogue._ratio import C_DECLARED, RatioSpec, ratio_claim
from rnn_core.numerics import guarded_ratio

__all__ = ["CLAIM", "C_DECLARED", "CONTROL_W_VAR", "grad_sq_norms", "gradient_ratios", "evaluate"]

CONTROL_W_VAR = 4.0  # W ~ N(0, 4/m): exploding


def grad_sq_norms(p, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, diagonal) per input, float64, shape (n,) each:

    total = ||grad_W f(x)||_F^2 = sum_{l,l'} <delta_l, delta_l'> <h_{l-1}, h_{l'-1}>
    diagonal = sum_l ||delta_l||^2 ||h_{l-1}||^2 (the l = l' terms only).
    For L = 1 both are 0 (h_0 = 0: W never acts).
    """
    from rnn_core.ntk import ntk_features

    n, L = X.shape[0], X.shape[1]
    if L < 2:
        z = torch.zeros(n, dtype=torch.float64, device=X.device)
        return z, z.clone()
    # (n, L-1, m): delta_l and h_{l-1}, l = 2..L
    deltas, h_prev = (t.to(torch.float64) for t in ntk_features(p, X.to(p.dtype)))
    prod = torch.bmm(deltas, deltas.transpose(1, 2)) * torch.bmm(h_prev, h_prev.transpose(1, 2))
    total = prod.sum(dim=(1, 2))
    diagonal = torch.diagonal(prod, dim1=1, dim2=2).sum(dim=1)
    return total, diagonal


def gradient_ratios(p, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratio, cross_frac): ||grad_W f(x)||_F^2 / (m H_inf(x, x)) per input, and |cross| / total."""
    from rnn_core.kernels import infinite_ntk_diag

    total, diagonal = grad_sq_norms(p, X)
    h_inf = infinite_ntk_diag(X.to(torch.float64)).to(device=total.device, dtype=torch.float64)
    r = guarded_ratio(total, p.m * h_inf, zero_by_zero=math.nan)
    cross = guarded_ratio((total - diagonal).abs(), total.abs(), zero_by_zero=math.nan)
    return r, cross


def _ratios(p, X: torch.Tensor) -> tuple[torch.Tensor, dict]:
    r, cross = gradient_ratios(p, X)
    cross = cross[~torch.isnan(cross)]
    return r, {"cross_frac": float(cross.max()) if cross.numel() else math.nan}


CLAIM = ratio_claim(
    RatioSpec(
        label="||grad||^2 / (m H_inf(x,x))",
        limit=1.0,
        control_w_var=CONTROL_W_VAR,
        ratios=_ratios,
        search=_search_stability.search_grad,
        backward=True,
        per_layer=False,
    ),
    id="GRAD",
    title="Gradient norm at initialization",
    operationalizes="gradient norm at init: ||grad_W f(x)||_F = Theta(sqrt m) poly(L), no input "
    "normalization needed",
    statement="For every input x, 1/2 <= ||grad_W f(x)||_F^2 / (m H_inf(x, x)) <= 2 at random "
    "initialization, H_inf(x, x) = (1/2) sum_{l<L} q_l; ||grad||^2 = m H_m(x, x) from the deltas and "
    "hidden states (cross-time terms included).",
    pass_rule="every ratio over the n inputs lies in [1/2, 2] (measured constant c = max(ratio_max, "
    "1/ratio_min) <= 2); margin c / 2",
    negative_control="W ~ N(0, 4/m): the ratio grows like 2^L (not informative at L = 2, where W does "
    "not enter ||grad||); run at the largest width and the shortest length >= 4",
)
evaluate = CLAIM.evaluate
