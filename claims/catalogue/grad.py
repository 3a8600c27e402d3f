"""GRAD: the gradient norm at initialization is Theta(sqrt m) times poly(L), without input normalization.

Statement (SPEC section 4, row GRAD). With grad_W f(x) = sum_l delta_l h_{l-1}^T (SPEC section 1), at
random initialization and for every input x,

    1/2 <= ||grad_W f(x)||_F^2 / (m H_inf(x, x)) <= 2,       H_inf(x, x) = (1/2) sum_{l=0}^{L-1} q_l

so ||grad_W f(x)||_F = Theta(sqrt(m)) * sqrt(H_inf(x, x)), and H_inf(x, x) is a polynomial in L and the
input norms (no small-norm condition).

Measurement. The m x m gradient is never formed:

    ||grad_W f(x)||_F^2 = sum_{l, l'} <delta_l, delta_l'> <h_{l-1}, h_{l'-1}> = m H_m(x, x)

computed per input from the two (L-1) x (L-1) Gram matrices of the deltas and of the previous hidden
states (l = 2..L; the l = 1 term vanishes because h_0 = 0), elementwise product, full sum. The cross-time
terms l != l' are included (they are O(sqrt m) each, not zero, at finite width); ``cross_frac`` reports
the largest share |sum_{l != l'}| / total over the batch. H_inf(x, x) is exact
(``rnn_core.infinite_ntk_diag``).

Measured per example: ratio_min, ratio_max of ||grad||^2 / (m H_inf(x, x)) over the n inputs, the
measured constant c = max(ratio_max, 1 / ratio_min) against the declared c = 2, cross_frac.

Pass rule (one example): every ratio in [1/2, 2]. Margin c_measured / 2.

Negative control: W ~ N(0, 4/m). Both the forward norms and the deltas then grow like 2^(steps), so the
ratio grows exponentially in L (measured at m = 2048: 1.3-4.2 at L = 4, 7-67 at L = 8). At L = 2 the
control is not informative: ||grad||^2 = ||delta_2||^2 ||h_1||^2 with h_1 = relu(A X_1) and
||delta_2||^2 = ||D_2 B||^2 ~ m/2 whatever the scale of W, so the ratio is ~1 exactly as for the paper's
init; the control cells therefore run at the shortest profile length >= 4, largest width.

Expected (SPEC "Expectation for CI"): holds at the profile's largest width for L = 2 (must hold). Small
widths and long lengths are findings (measured: m = 64, L = 16: ratios 0.04-25).
"""

from __future__ import annotations

import torch

from claims.base import Claim, Context, Outcome, finite_or_nan
from claims.catalogue import _init_common as common
from claims.registry import register

__all__ = ["CLAIM", "C_DECLARED", "CONTROL_W_VAR", "grad_sq_norms", "gradient_ratios", "evaluate"]

C_DECLARED = 2.0
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
    D, Hp = ntk_features(p, X)  # (n, L-1, m): delta_l and h_{l-1}, l = 2..L
    Gd = torch.bmm(D, D.transpose(1, 2)).to(torch.float64)
    Gh = torch.bmm(Hp, Hp.transpose(1, 2)).to(torch.float64)
    prod = Gd * Gh
    total = prod.sum(dim=(1, 2))
    diagonal = torch.diagonal(prod, dim1=1, dim2=2).sum(dim=1)
    return total, diagonal


def gradient_ratios(p, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ratio, cross_frac): ||grad_W f(x)||_F^2 / (m H_inf(x, x)) per input, and |cross| / total."""
    from rnn_core.kernels import infinite_ntk_diag

    total, diagonal = grad_sq_norms(p, X)
    h_inf = infinite_ntk_diag(X).to(device=total.device, dtype=torch.float64)
    r = common.ratio(total, p.m * h_inf)
    cross = common.ratio((total - diagonal).abs(), total.abs())
    return r, cross


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    X = common.inputs(recipe, ctx)
    p = common.network(cell, recipe, ctx)
    r, cross = gradient_ratios(p, X)
    ok, margin, c_meas, r_min, r_max = common.two_sided(r, 1.0, C_DECLARED)
    cross = cross[~torch.isnan(cross)]
    measured = {
        "ratio_min": r_min,
        "ratio_max": r_max,
        "c": c_meas,
        "cross_frac": finite_or_nan(cross.max()) if cross.numel() else float("nan"),
    }
    return Outcome(ok=ok, margin=margin, measured=measured, constants={"c": c_meas})


CLAIM = register(
    Claim(
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
        expected="holds at the profile's largest width for L = 2 (must hold); fails at small width and long "
        "length (a finding)",
        axes=("m", "L", "regime"),
        declared={"c": C_DECLARED},
        delta=0.1,
        cells=common.cells_with_controls(CONTROL_W_VAR),
        strategy=common.strategy,
        evaluate=evaluate,
        must_hold=common.must_hold_largest_width_l2,
        memory_bytes=common.cell_memory,
    )
)
