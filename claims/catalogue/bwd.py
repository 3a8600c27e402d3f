"""BWD: backward stability at initialization (SPEC section 4, row BWD).

Math. With delta_l = df/dg_l (SPEC section 1): delta_L = D_L B^T, delta_l = D_l W^T delta_{l+1},
D_l = diag(1[g_l > 0]). At init ||D_L B||^2 / m -> 1/2, and each backward step W^T (variance 2/m)
followed by the mask D_l keeps the second moment, so ||delta_l||^2 / m -> 1/2 for every l. The claim
bounds r_l(x) = ||delta_l(x)||^2 / m in [1/4, 1] = [1/2 / c, 1/2 c] with c = 2.

Computation. ``rnn_core.forward`` and ``rnn_core.backward_deltas`` (the one pass) over the recipe's n
sequences; the (n, L) ratio matrix; the rule, cells and threshold searches of
:mod:`claims.catalogue._ratio` with r_inf = 1/2, c = 2. The control's W ~ N(0, 1/m) halves the second moment per backward step:
||delta_l||^2 / m -> (1/2)^(L - l + 1), whose limit reaches the lower bound 1/4 at l = L - 1 and is
below it from L = 3 on (the control cells sit at the shortest length >= 4).
"""

from __future__ import annotations

import torch

from claims.catalogue import _search_stability
from claims.catalogue._ratio import C_DECLARED, RatioSpec, ratio_claim

__all__ = ["CLAIM", "C_DECLARED", "LIMIT", "CONTROL_W_VAR", "backward_ratios", "evaluate"]

LIMIT = 0.5  # lim ||delta_l||^2 / m
CONTROL_W_VAR = 1.0  # W ~ N(0, 1/m): vanishing backward pass


def backward_ratios(p, X: torch.Tensor) -> torch.Tensor:
    """(n, L) matrix of ||delta_l(x_i)||^2 / m for l = 1..L, float64."""
    from rnn_core.model import backward_deltas, forward

    fw = forward(p, X.to(p.dtype))
    deltas = backward_deltas(p, fw)  # (n, L, m), deltas[:, l-1] = delta_l
    return deltas.to(torch.float64).pow(2).sum(dim=2) / p.m


def _ratios(p, X: torch.Tensor) -> tuple[torch.Tensor, dict]:
    return backward_ratios(p, X), {}


CLAIM = ratio_claim(
    RatioSpec(
        label="||delta_l||^2 / m",
        limit=LIMIT,
        control_w_var=CONTROL_W_VAR,
        ratios=_ratios,
        search=_search_stability.search_bwd,
        backward=True,
    ),
    id="BWD",
    title="Backward stability at initialization",
    operationalizes="backward stability at init: the backward deltas neither vanish nor explode",
    statement="For all layers l and every input x, 1/4 <= ||delta_l(x)||^2 / m <= 1 at random "
    "initialization (infinite-width limit 1/2), delta_l = df/dg_l.",
    pass_rule="every ratio ||delta_l||^2 / m over the n inputs and l = 1..L lies in [1/4, 1] "
    "(measured constant c = max(2 ratio_max, 1 / (2 ratio_min)) <= 2); margin c / 2",
    negative_control="W ~ N(0, 1/m) (vanishing): ||delta_l||^2 / m -> (1/2)^(L-l+1), below 1/4 from "
    "L = 3 on (at the bound at L = 2); run at the largest width and the shortest length >= 4",
)
evaluate = CLAIM.evaluate
