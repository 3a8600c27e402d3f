"""FWD: forward stability at initialization (SPEC section 4, row FWD).

Math. For h_l = relu(W h_{l-1} + A X_l) at init (W, A ~ N(0, 2/m)) and q_l = sum_{k<=l} ||X_k||^2
(= K_l(x, x), the infinite-width limit of ||h_l||^2: the ReLU halves the second moment and the variance
2/m restores it, so each step adds ||X_l||^2), the claim bounds r_l(x) = ||h_l(x)||^2 / q_l(x) in
[1/2, 2] for every input and every l = 1..L.

Computation. One ``rnn_core.forward`` pass over the recipe's n sequences; the (n, L) ratio matrix via
:func:`rnn_core.numerics.guarded_ratio` (a zero prefix gives 0 / 0 = NaN, left out); the rule, cells and
threshold searches of :mod:`claims.catalogue._ratio` with r_inf = 1, c = 2. Series: per layer the min and
max over the batch. The control's W ~ N(0, 4/m) makes the recursion carry ||h_l||^2 -> sum_k 2^(l-k) ||X_k||^2.
"""

from __future__ import annotations

import math

import torch

from claims.catalogue import _search_stability
from claims.catalogue._ratio import C_DECLARED, RatioSpec, ratio_claim
from rnn_core.numerics import guarded_ratio

__all__ = ["CLAIM", "C_DECLARED", "CONTROL_W_VAR", "forward_ratios", "evaluate"]

CONTROL_W_VAR = 4.0  # W ~ N(0, 4/m): exploding forward pass


def forward_ratios(p, X: torch.Tensor) -> torch.Tensor:
    """(n, L) matrix of ||h_l(x_i)||^2 / q_l(x_i), float64 (0/0 -> NaN, x/0 -> inf)."""
    import rnn_core

    fw = rnn_core.forward(p, X.to(p.dtype))
    h2 = fw.hidden_states().to(torch.float64).pow(2).sum(dim=2)  # (n, L): ||h_l||^2, l = 1..L
    q = torch.cumsum(X.to(torch.float64).pow(2).sum(dim=2), dim=1)  # (n, L): q_l
    return guarded_ratio(h2, q, zero_by_zero=math.nan)


def _ratios(p, X: torch.Tensor) -> tuple[torch.Tensor, dict]:
    return forward_ratios(p, X), {}


CLAIM = ratio_claim(
    RatioSpec(
        label="||h_l||^2 / q_l",
        limit=1.0,
        control_w_var=CONTROL_W_VAR,
        ratios=_ratios,
        search=_search_stability.search_fwd,
        backward=False,
    ),
    id="FWD",
    title="Forward stability at initialization",
    operationalizes="forward stability at init: ||h_l||^2 stays within a constant factor of q_l "
    "(the hidden-state norm lemma behind the paper's over-parameterization analysis)",
    statement="For all layers l and every input x, 1/2 <= ||h_l(x)||^2 / q_l(x) <= 2 at random "
    "initialization, q_l = sum_{k<=l} ||X_k||^2 (the infinite-width limit K_l(x, x)); no small-norm "
    "condition on the inputs.",
    pass_rule="every ratio ||h_l||^2 / q_l over the n inputs and l = 1..L lies in [1/2, 2] "
    "(measured constant c = max(ratio_max, 1/ratio_min) <= 2); margin c / 2",
    negative_control="W ~ N(0, 4/m) (exploding): ||h_l||^2 -> sum_k 2^(l-k) ||X_k||^2, outside [1/2, 2] "
    "from l = 3 on; run at the largest width and the shortest length >= 4",
)
evaluate = CLAIM.evaluate
