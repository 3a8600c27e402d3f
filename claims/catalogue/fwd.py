"""FWD: forward stability at initialization (SPEC section 4, row FWD).

Math. For h_l = relu(W h_{l-1} + A X_l) at init (W, A ~ N(0, 2/m)) and q_l = sum_{k<=l} ||X_k||^2
(= K_l(x, x), the infinite-width limit of ||h_l||^2: the ReLU halves the second moment and the variance
2/m restores it, so each step adds ||X_l||^2), the claim bounds r_l(x) = ||h_l(x)||^2 / q_l(x) in
[1/2, 2] for every input and every l = 1..L.

Computation. One ``rnn_core.forward`` pass over the recipe's n sequences; the (n, L) ratio matrix via
:func:`rnn_core.numerics.guarded_ratio` (a zero prefix gives 0 / 0 = NaN, left out); the two-sided rule of
:mod:`claims.catalogue._init_common` with r_inf = 1, c = 2. Series: per layer the min and max over the
batch. The control's W ~ N(0, 4/m) makes the recursion carry ||h_l||^2 -> sum_k 2^(l-k) ||X_k||^2.
"""

from __future__ import annotations

import math

import torch

from claims.base import Claim, Context, Outcome
from claims.catalogue import _init_common as common
from claims.registry import register
from rnn_core.numerics import guarded_ratio

__all__ = [
    "CLAIM",
    "SETTINGS",
    "C_DECLARED",
    "CONTROL_W_VAR",
    "forward_ratios",
    "cells",
    "strategy",
    "evaluate",
    "must_hold",
    "memory_bytes",
    "cost",
]

C_DECLARED = 2.0
CONTROL_W_VAR = 4.0  # W ~ N(0, 4/m): exploding forward pass

#: n sequences per example (these claims are about every input, not about n)
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 6},
    "quick": {"n": 8},
    "standard": {"n": 4},
    "full": {"n": 16},
}


def forward_ratios(p, X: torch.Tensor) -> torch.Tensor:
    """(n, L) matrix of ||h_l(x_i)||^2 / q_l(x_i), float64 (0/0 -> NaN, x/0 -> inf)."""
    import rnn_core

    fw = rnn_core.forward(p, X.to(p.dtype))
    h2 = fw.h_tm[1:].to(torch.float64).pow(2).sum(dim=2).T  # (n, L): ||h_l||^2, l = 1..L
    q = torch.cumsum(X.to(torch.float64).pow(2).sum(dim=2), dim=1)  # (n, L): q_l
    return guarded_ratio(h2, q, zero_by_zero=math.nan)


def cells(profile) -> list[dict]:
    return common.stability_cells(profile, CONTROL_W_VAR)


def strategy(cell: dict, profile):
    return common.recipes_for(cell, CLAIM.settings_for(profile)["n"])


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    X = common.inputs(recipe, ctx)
    p = common.network(cell, recipe, ctx)
    r = forward_ratios(p, X)
    ok, margin, c_meas, r_min, r_max = common.two_sided(r, 1.0, C_DECLARED)
    reason = "" if ok is not False else common.ratio_reason("||h_l||^2 / q_l", r_min, r_max, 0.5, 2.0)
    measured = {"ratio_min": r_min, "ratio_max": r_max, "c": c_meas}
    return Outcome(ok=ok, margin=margin, measured=measured, series=common.layer_series(r),
                   constants={"c": c_meas}, reason=reason)


def must_hold(cell: dict, profile) -> bool:
    return common.largest_width_l2(cell, profile)


def memory_bytes(cell: dict, profile) -> int:
    return common.network_memory(int(cell["m"]), CLAIM.settings_for(profile)["n"], int(cell["L"]))


def cost(cell: dict, profile) -> float:
    m, L, n = int(cell["m"]), int(cell["L"]), CLAIM.settings_for(profile)["n"]
    return common.seconds(common.network_flops(m, n, L), draws=m * m)


CLAIM = register(
    Claim(
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
        expected="holds at the profile's largest width for L = 2 (must hold); the spread of the ratio grows "
        "with L / m, so small widths and long lengths fail (findings)",
        axes=("m", "L", "regime"),
        declared={"c": C_DECLARED},
        delta=0.1,
        cells=cells,
        strategy=strategy,
        evaluate=evaluate,
        must_hold=must_hold,
        memory_bytes=memory_bytes,
        cost=cost,
        settings=SETTINGS,
        figures=("reports.figures:forward_layers_figure",),
        precision=common.RATIO_PRECISION,
        max_shrink=4,  # failing cells are findings at small width / long length: a few shrink steps suffice
    )
)
